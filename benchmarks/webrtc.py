"""A long WebRTC session against `live serve`: does latency or memory build up over time?

    python benchmarks/webrtc.py --minutes 10 --json benchmarks/results/webrtc-10min.json

Starts `live serve` (subprocess), connects one aiortc peer on 127.0.0.1 whose camera plays a face video at
25 fps (the same thing a browser's fake camera does), and every 10 s records the server's stats (server
latency: driving frame arrival -> avatar sent, p50/p95 over the last 300 avatars; frames, drops, RSS,
threads) and the client's receive rate. Reports minute 1 vs the last minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fps import machine_info  # noqa: E402

log = logging.getLogger("benchmarks.webrtc")


async def run(base: str, seconds: float, every: float) -> list[dict]:
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from rtc_client import camera_track, count_received, face_frames, get, post_json

    pc = RTCPeerConnection()
    cam = camera_track(face_frames(100, 256))
    pc.addTrack(cam)
    received = count_received(pc)

    await pc.setLocalDescription(await pc.createOffer())
    status, answer = await post_json(base + "/offer", {"sdp": pc.localDescription.sdp, "type": "offer"})
    if status != 200:
        raise SystemExit(f"offer refused: {status} {answer}")
    await pc.setRemoteDescription(RTCSessionDescription(**answer))
    samples, t0, last_n = [], time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(every)
        stats = json.loads((await asyncio.to_thread(get, base, "/stats"))[1])
        s = stats["sessions"][0] if stats["sessions"] else {}
        row = {"t_s": round(time.monotonic() - t0, 1), "received_fps": round((received["n"] - last_n) / every, 1),
               "rss_mb": stats["rss_mb"], "threads": stats["threads"],
               **{k: s.get(k) for k in ("frames_in", "frames_done", "dropped", "fps_done", "work_ms_p50",
                                        "server_latency_ms_p50", "server_latency_ms_p95")}}
        last_n = received["n"]
        samples.append(row)
        log.info(json.dumps(row))
    cam.stop()
    await pc.close()
    return samples


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--backend", default="auto")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from rtc_client import start_server, stop_server

    proc, base = start_server("--backend", args.backend, timeout=300)
    try:
        samples = asyncio.run(run(base, args.minutes * 60, args.every))
    finally:
        stop_server(proc)

    def window(lo: float, hi: float) -> dict:
        rows = [r for r in samples if lo < r["t_s"] <= hi]
        keys = ("server_latency_ms_p50", "server_latency_ms_p95", "received_fps", "fps_done", "rss_mb")
        return {k: round(sum(r[k] or 0 for r in rows) / max(1, len(rows)), 1) for k in keys}

    end = samples[-1]["t_s"] if samples else 0
    result = {"minutes": args.minutes, "backend": args.backend, "minute_1": window(0, 60),
              "last_minute": window(end - 60, end), "dropped_total": samples[-1]["dropped"] if samples else None,
              "samples": samples, "machine": machine_info(),
              "note": "server latency = driving frame arrival at the server -> avatar handed to the encoder; the "
                      "browser adds network, jitter buffer and decode (the page shows its estimate)"}
    print(f"minute 1:    {result['minute_1']}")
    print(f"last minute: {result['last_minute']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
