"""Many clients at once against a small `live serve`: does it stay up and give everything back?

    python benchmarks/soak.py --minutes 5 --json benchmarks/results/webrtc-soak.json

Starts `live serve --max-peers 2 --connect-timeout 5` (subprocess) and, for --minutes, runs rounds of
--peers aiortc clients at once (127.0.0.1, no STUN). Each client posts a real offer; most are refused
(503: two slots). Of those admitted, half complete the connection, stream a face for a second or two and
hang up; the other half leave half-way: they post the offer and never apply the answer (the server must
drop them after --connect-timeout). Then it waits for the server to settle, connects one last real peer
(it must get avatar frames) and compares the server's open files, threads and memory with their level
after warm-up. Stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fps import machine_info  # noqa: E402

log = logging.getLogger("benchmarks.soak")
CONNECT_TIMEOUT_S = 5.0


async def server_state(base: str) -> dict:
    from rtc_client import get

    stats = json.loads((await asyncio.to_thread(get, base, "/stats"))[1])
    return {k: stats[k] for k in ("peers", "threads", "open_fds", "rss_mb")}


async def client(base: str, frames, rng: random.Random) -> str:
    """One client: 'refused', 'completed' (streamed, got frames), 'abandoned' (offer posted, never completed)
    or 'failed: ...'."""
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from rtc_client import camera_track, count_received, post_json

    pc = RTCPeerConnection()
    cam = camera_track(frames)
    pc.addTrack(cam)
    got = count_received(pc)

    try:
        await pc.setLocalDescription(await pc.createOffer())
        status, answer = await post_json(base + "/offer", {"sdp": pc.localDescription.sdp, "type": "offer"})
        if status == 503:
            return "refused"
        if status != 200:
            return f"failed: {status} {answer}"
        if rng.random() < 0.5:  # leave half-way: the answer is never applied; hang around, then go
            await asyncio.sleep(rng.uniform(0.0, 2.0 * CONNECT_TIMEOUT_S))
            return "abandoned"
        await pc.setRemoteDescription(RTCSessionDescription(**answer))
        await asyncio.sleep(rng.uniform(1.0, 3.0))
        return "completed" if got["n"] else "completed, no frames yet"
    finally:
        cam.stop()
        await pc.close()


async def soak(base: str, seconds: float, peers: int, seed: int) -> dict:
    from rtc_client import face_frames, session

    rng = random.Random(seed)
    frames = face_frames(20)
    for _ in range(2):  # warm up: executors, codecs, MediaPipe's first graph
        await session(base, 2.0)
    await asyncio.sleep(CONNECT_TIMEOUT_S + 3.0)
    start = await server_state(base)
    log.info("start: %s", start)
    outcomes: dict[str, int] = {}
    rounds, t0, samples = 0, time.monotonic(), []
    while time.monotonic() - t0 < seconds:
        results = await asyncio.gather(*(client(base, frames, rng) for _ in range(peers)))
        for r in results:
            outcomes[r] = outcomes.get(r, 0) + 1
        rounds += 1
        state = await server_state(base)
        samples.append({"t_s": round(time.monotonic() - t0, 1), **state})
        log.info("round %d (%.0f s): %s; server %s", rounds, time.monotonic() - t0, outcomes, state)
    await asyncio.sleep(CONNECT_TIMEOUT_S + 3.0)  # the last abandoned offers time out
    settled = await server_state(base)
    final = await session(base, 4.0)
    await asyncio.sleep(3.0)
    end = await server_state(base)
    return {"start": start, "settled": settled, "end": end, "rounds": rounds, "outcomes": outcomes,
            "final_peer": {"status": final["status"], "frames": len(final["frames"])}, "samples": samples}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--peers", type=int, default=50, help="clients per round, all at once (default 50)")
    p.add_argument("--max-peers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--server-log", default="soak-server.log", help="where the server's log goes")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("aioice", "aiortc"):  # per-candidate and per-connection chatter
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from rtc_client import start_server, stop_server

    server_log = Path(args.server_log)
    with server_log.open("w") as log_file:
        proc, base = start_server("--backend", args.backend, "--max-peers", str(args.max_peers),
                                  "--connect-timeout", str(CONNECT_TIMEOUT_S), timeout=300, log_file=log_file)
        try:
            result = asyncio.run(soak(base, args.minutes * 60, args.peers, args.seed))
        finally:
            stop_server(proc)
    out = server_log.read_text()
    result.update(minutes=args.minutes, peers=args.peers, max_peers=args.max_peers, backend=args.backend,
                  server_exit=proc.returncode, server_tracebacks=out.count("Traceback"), machine=machine_info())
    s, e = result["start"], result["end"]
    print(f"{result['rounds']} rounds of {args.peers} clients: {result['outcomes']}")
    print(f"server start {s} -> after the last peer {e}; final peer {result['final_peer']}; "
          f"tracebacks in its log: {result['server_tracebacks']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    ok = (result["final_peer"]["status"] == 200 and result["final_peer"]["frames"] > 0 and e["peers"] == 0
          and e["threads"] <= s["threads"] + 2 and e["open_fds"] <= s["open_fds"] + 4
          and not result["server_tracebacks"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
