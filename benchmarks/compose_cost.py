"""What one call-ready frame costs to compose, on its own (no synthesis beside it).

    python benchmarks/compose_cost.py                    # 1280x720, 200 calls per case
    python benchmarks/compose_cost.py --frame 640x480 --json results/compose-cost.json

The scene is matplotlib's Grace Hopper with her own aligned crop as the avatar (a real photo and mesh, no generator
needed). Cases, p50 over the calls: at rest (compose only), a turned avatar (roll 4 deg), and a moving head (the
background's displacement field and compose, a new move every call, as on a talking driver). For the cost beside
synthesis on the same cores see benchmarks/fps.py with `--stages tracking,encoder,synthesis,compose`.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from live.align import ffhq_align, ffhq_quad
from live.assets import AssetStore
from live.compose import compose, head_move, make_scene, moved_head, parse_frame
from live.landmarker import faces_in_image
from live.samples import grace_hopper
from live.train.live_heads import machine

log = logging.getLogger("benchmarks.compose_cost")


def timed(fn, calls: int) -> float:
    """p50 milliseconds of fn(i) over `calls` calls, after 5 untimed ones."""
    for i in range(5):
        fn(i)
    times = []
    for i in range(calls):
        t = time.perf_counter_ns()
        fn(i)
        times.append((time.perf_counter_ns() - t) / 1e6)
    return round(float(np.median(times)), 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frame", default="1280x720", help="frame size WxH (default 1280x720)")
    p.add_argument("--side", type=int, default=256, help="the avatar's side (the synthesis size; default 256)")
    p.add_argument("--calls", type=int, default=200, help="timed calls per case (default 200)")
    p.add_argument("--json", metavar="PATH", help="also write the numbers here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    size = parse_frame(args.frame)
    if size is None:
        p.error("--frame avatar has nothing to compose: give WxH")

    photo = grace_hopper()
    faces = faces_in_image(AssetStore(progress=False).resolve("face_landmarker"), photo)
    landmarks = np.asarray(faces[0].landmarks)
    h, w = photo.shape[:2]
    aligned = ffhq_align(photo, landmarks, args.side)
    points = landmarks[:, :2] * [w, h] @ aligned.matrix[:, :2].T + aligned.matrix[:, 2]
    scene = make_scene(photo, ffhq_quad(landmarks[:, :2] * [w, h]), aligned.image, points, size)
    avatar = aligned.image
    moves = [head_move(scene, 0.4 * np.sin(i / 5), 0.15 * np.cos(i / 7), 1 + 0.05 * np.sin(i / 9))
             for i in range(args.calls + 5)]

    result = {
        "rest_ms": timed(lambda i: compose(scene, avatar), args.calls),
        "roll_ms": timed(lambda i: compose(scene, avatar, None, 4.0), args.calls),
        "moving_head_ms": timed(lambda i: moved_head(scene, moves[i]), args.calls),
        "moving_ms": timed(lambda i: compose(scene, avatar, moves[i], 0.0, moved_head(scene, moves[i])),
                           args.calls),
        "frame": args.frame, "side": args.side, "calls": args.calls, "machine": machine(),
        "head_box": list(scene.head_box),
    }
    for key in ("rest_ms", "roll_ms", "moving_head_ms", "moving_ms"):
        log.info("%-22s p50 %6.2f ms", key[:-3].replace("_", " "), result[key])
    log.info("machine: %s", result["machine"])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
