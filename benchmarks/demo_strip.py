"""The scripted demo's pout, lip press and squint, without and with the warp, side by side.

    live demo --rest neutral --seed 0 --fps 5 -o demo.mp4 && live demo --warp --seed 0 --fps 5 -o demo-warp.mp4
    python benchmarks/demo_strip.py demo.mp4 demo-warp.mp4 --png results/demo-pout-press-squint.jpg

Rows: without the warp, with it; columns: at rest before the pout (after the nod), the pout, the lip press, the squint (each at its
keyframe in live.demo.KEYFRAMES), each cropped to the mouth and eyes and enlarged 2x.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from live.demo import KEYFRAMES

log = logging.getLogger("benchmarks.demo_strip")
MOMENTS = (("rest", 7.8), ("pout", None), ("press", None), ("squint", None))
MARKS = {"pout": "mouthPucker", "press": "mouthPressLeft", "squint": "eyeSquintLeft"}


def key_time(name: str, t: float | None) -> float:
    return t if t is not None else next(k for k, blend, _ in KEYFRAMES if MARKS[name] in blend)


def read(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    if not frames:
        raise SystemExit(f"{path}: no frames could be read (is it a video `live demo` wrote?)")
    return frames


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plain", type=Path, help="`live demo` video without the warp")
    p.add_argument("warped", type=Path, help="the same demo with --warp")
    p.add_argument("--fps", type=float, default=5.0, help="the demos' --fps (default 5)")
    p.add_argument("--png", type=Path, required=True, help="the strip to write (.jpg or .png)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    for path in (args.plain, args.warped):
        frames = read(path)
        side = frames[0].shape[0]
        y0, y1, x0, x1 = int(0.37 * side), int(0.9 * side), int(0.23 * side), int(0.78 * side)
        cells = []
        for name, t in MOMENTS:
            f = frames[min(len(frames) - 1, round(key_time(name, t) * args.fps))][y0:y1, x0:x1]
            f = cv2.resize(f, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
            cv2.putText(f, f"{name}{' warp' if path == args.warped else ''}", (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                        (255, 255, 255), 2, cv2.LINE_AA)
            cells.append(f)
        rows.append(np.hstack(cells))
    args.png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.png), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 92])
    log.info("wrote %s", args.png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
