"""`live serve`: build the shared engine and run the WebRTC demo server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

log = logging.getLogger("live")
CONNECT_TIMEOUT_S = 20.0  # offer -> connected; a browser on a LAN takes well under a second
MALLOC_ARENAS = 2  # glibc arenas a server may spread over: peers on new threads otherwise grow RSS for good

SERVE_EPILOG = """\
examples:
  live serve                                   open http://127.0.0.1:8080 and allow the camera
  live serve --identity me.identity --port 9000
  live serve --identity me.identity --identity seed:3    the page can switch between "me" and "seed:3"
  live serve --identities ~/faces               every NAME.identity in ~/faces, by NAME
  live serve --host 0.0.0.0                    reachable from the LAN (a warning is printed)

Any WebRTC client can use it: POST /offer with {"sdp": ..., "type": "offer"} (a sendrecv video track)
returns the answer; the avatar comes back on the same connection. Controls go over a data channel
named "control" as JSON ({"expression_gain": 0.5}, {"freeze": true}, {"recentre": true},
{"emotion": 1.0}, {"identity": "me"}); stats come back on it twice a second. GET /stats has them too.
A client switches only among the identities named here, by name (GET /stats lists them): it never
names a file on this machine. Offers whose connection does not complete within --connect-timeout
seconds are dropped, so a half-open client cannot hold a peer slot.
"""


def add_serve_parser(sub, add_common, synthesis_options) -> None:
    s = sub.add_parser("serve", help="WebRTC demo page: your browser camera drives the avatar",
                       description="Serve a page that sends the browser's camera to this machine over WebRTC "
                                   "and shows the reenacted avatar coming back, with live stats and controls.",
                       epilog=SERVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    s.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    s.add_argument("--identity", action="append", metavar="SPEC",
                   help="seed:N, NAME.identity or a portrait (enrolled at start); repeat it to offer several. The "
                        "first is shown at start (default seed:0)")
    s.add_argument("--identities", type=Path, metavar="DIR",
                   help="also offer every NAME.identity in DIR, named NAME")
    s.add_argument("--max-peers", type=int, default=2, help="concurrent connections (default 2)")
    s.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT_S, metavar="S",
                   help=f"drop a peer whose connection is not up S seconds after its offer (default "
                        f"{CONNECT_TIMEOUT_S:g})")
    synthesis_options(s)
    add_common(s)


def identity_name(spec: str) -> str:
    """What clients call an identity: seed:N as itself, a file by its stem."""
    text = spec.strip()
    return text if text.startswith("seed:") else Path(text).stem


def serve_identities(specs: list[str], directory: Path | None, resolve) -> dict[str, tuple[int, Path | None]]:
    """name -> (seed, identity file) of every identity the operator offers, in order (the first is shown at
    start). Resolved now (a portrait is enrolled now, files are checked now), so that nothing a client sends
    makes the server read a path or enroll."""
    from live.identity_file import SUFFIX, load_identity

    named = [(identity_name(spec), spec) for spec in specs]
    if directory is not None:
        directory = directory.expanduser()
        if not directory.is_dir():
            raise ValueError(f"--identities {directory}: not a folder")
        files = sorted(directory.glob(f"*{SUFFIX}"))
        if not files:
            raise ValueError(f"--identities {directory}: no *{SUFFIX} files in it (make one with `live enroll`)")
        named += [(f.stem, str(f)) for f in files]
    if not named:
        named = [("seed:0", "seed:0")]
    offered: dict[str, tuple[int, Path | None]] = {}
    for name, spec in named:
        if name in offered:
            raise ValueError(f"two identities are both called {name!r} ({spec} and an earlier one): clients pick "
                             "identities by name; rename one of the files")
        seed, path = resolve(spec)
        if path is not None:
            load_identity(path)  # a damaged file is refused now, naming it
        offered[name] = (seed, path)
    return offered


def cmd_serve(args: argparse.Namespace, store) -> int:
    try:
        from aiohttp import web
    except ImportError:
        raise ValueError("live serve needs aiohttp and aiortc: pip install 'live[webrtc]'") from None
    from live.cli_enroll import resolve_identity
    from live.cli_run import DEFAULT_FRAME, synthesis_config
    from live.rtc import Engine
    from live.server import Server, limit_malloc_arenas

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be 1..65535, got {args.port}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("live serve is reachable from other machines on %s:%d: anyone who can reach it can use "
                    "your CPU/GPU and see the avatar. Use --host 127.0.0.1 to keep it local.", args.host, args.port)
    logging.getLogger("aioice").setLevel(logging.WARNING)  # per-candidate chatter
    if args.connect_timeout <= 0:
        raise ValueError(f"--connect-timeout must be positive, got {args.connect_timeout}")
    identities = serve_identities(args.identity or [], args.identities, lambda spec: resolve_identity(spec, store))
    first = next(iter(identities))
    limit_malloc_arenas(MALLOC_ARENAS)  # before the models load and the peers' threads start
    log.info("loading models for %s (first run: compiling can take ~30 s)", first)
    engine = Engine(synthesis_config(args, default_frame=DEFAULT_FRAME), store, identities)
    server = Server(engine, max_peers=args.max_peers, connect_timeout_s=args.connect_timeout)
    print(f"live serve: open http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port} "
          f"(identities {', '.join(identities)}, {'x'.join(map(str, engine.frame))}, up to {args.max_peers} peers). Ctrl-C stops.",
          flush=True)
    app = server.app()
    app.on_startup.append(stop_once_on_signals(web.GracefulExit))
    web.run_app(app, host=args.host, port=args.port, print=None, handle_signals=False)
    return 0


def stop_once_on_signals(graceful_exit: type[BaseException]):
    """An app start-up hook: Ctrl-C (or SIGTERM) stops the server gracefully: the first raises `graceful_exit` (aiohttp's
    run_app then closes the peers) and from then on both are ignored. With aiohttp's handlers a second Ctrl-C 50 ms
    after the first killed the process by the signal (rc -2): an idle server is gone in less than that, and at the
    interpreter's shutdown a Python handler is reset to the default, an ignored signal is not. The handler runs as an
    event-loop callback (loop.add_signal_handler), not between any two bytecodes: raised inside a weakref callback
    the exit was swallowed ("Exception ignored in ...") and printed as a traceback."""
    async def install(app) -> None:
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)
            log.info("stopping: closing the peers")
            raise graceful_exit()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)

    return install
