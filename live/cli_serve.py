"""`live serve`: build the shared engine and run the WebRTC demo server."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("live")

SERVE_EPILOG = """\
examples:
  live serve                                   open http://127.0.0.1:8080 and allow the camera
  live serve --identity me.identity --port 9000
  live serve --host 0.0.0.0                    reachable from the LAN (a warning is printed)

Any WebRTC client can use it: POST /offer with {"sdp": ..., "type": "offer"} (a sendrecv video track)
returns the answer; the avatar comes back on the same connection. Controls go over a data channel
named "control" as JSON ({"expression_gain": 0.5}, {"freeze": true}, {"recentre": true},
{"emotion": 1.0}, {"identity": "seed:3"}); stats come back on it twice a second. GET /stats has them too.
"""


def add_serve_parser(sub, add_common, synthesis_options) -> None:
    s = sub.add_parser("serve", help="WebRTC demo page: your browser camera drives the avatar",
                       description="Serve a page that sends the browser's camera to this machine over WebRTC "
                                   "and shows the reenacted avatar coming back, with live stats and controls.",
                       epilog=SERVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    s.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    s.add_argument("--identity", default="seed:0", help="seed:N, NAME.identity or a portrait (default seed:0)")
    s.add_argument("--max-peers", type=int, default=2, help="concurrent connections (default 2)")
    synthesis_options(s)
    add_common(s)


def cmd_serve(args: argparse.Namespace, store) -> int:
    try:
        from aiohttp import web
    except ImportError:
        raise ValueError("live serve needs aiohttp and aiortc: pip install 'live[webrtc]'") from None
    from live.cli_enroll import resolve_identity
    from live.cli_run import synthesis_config
    from live.rtc import Engine
    from live.server import Server

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be 1..65535, got {args.port}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("live serve is reachable from other machines on %s:%d: anyone who can reach it can use "
                    "your CPU/GPU and see the avatar. Use --host 127.0.0.1 to keep it local.", args.host, args.port)
    logging.getLogger("aioice").setLevel(logging.WARNING)  # per-candidate chatter
    log.info("loading models for %s (first run: compiling can take ~30 s)", args.identity)
    engine = Engine(synthesis_config(args), store, lambda spec: resolve_identity(spec, store), args.identity)
    server = Server(engine, max_peers=args.max_peers)
    print(f"live serve: open http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port} "
          f"(identity {args.identity}, {args.size}², up to {args.max_peers} peers). Ctrl-C stops.", flush=True)
    web.run_app(server.app(), host=args.host, port=args.port, print=None, handle_signals=True)
    return 0
