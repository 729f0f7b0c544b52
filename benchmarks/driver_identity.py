"""What expressions cost real people in dlib's identity distance: the yardstick for quality.py's identity measure.

    python benchmarks/driver_identity.py ../shared/data/driving/*.mp4 --max-frames 100 --json results/driver-identity.json

quality.py scores an avatar by the dlib distance of each driven frame from the avatar at rest (target median
<= 0.40, worst <= 0.55). A real person talking, smiling and turning also moves away from their own first frame in
that distance; this measures how far, per clip: each frame's descriptor (dlib's detector on the frame) against the
first frame's (the frame the encoder takes as the driver's neutral), over the same frames quality.py reads.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2
import numpy as np

from live.assets import AssetStore
from live.metrics.face_distance import IdentityMetric
from live.train.live_heads import machine

log = logging.getLogger("benchmarks.driver_identity")


def clip_distances(metric: IdentityMetric, path: Path, max_frames: int) -> list[float]:
    """dlib distance of each of the first `max_frames` frames from the first one with a face (frames without one
    are skipped)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SystemExit(f"{path}: cannot be opened as a video")
    reference, out = None, []
    try:
        for _ in range(max_frames):
            ok, bgr = cap.read()
            if not ok:
                break
            d = metric.descriptor(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), upsample=0)
            if d is None:
                continue
            if reference is None:
                reference = d
            else:
                out.append(metric.distance(d, reference))
    finally:
        cap.release()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clips", nargs="+", type=Path, help="driving videos")
    p.add_argument("--max-frames", type=int, default=100, help="frames read per clip (default 100, as quality.py)")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    metric = IdentityMetric(AssetStore())
    per_clip, pooled = {}, []
    for path in args.clips:
        d = clip_distances(metric, path, args.max_frames)
        if not d:
            log.warning("%s: no face found by dlib", path.name)
            continue
        per_clip[path.stem] = {"frames": len(d), "median": round(float(np.median(d)), 3),
                               "worst": round(float(np.max(d)), 3)}
        pooled += d
        log.info("%s: median %.3f, worst %.3f over %d frames", path.stem, np.median(d), np.max(d), len(d))
    if not pooled:
        raise SystemExit("no clip had a face dlib could find")
    result = {"clips": per_clip, "median": round(float(np.median(pooled)), 3),
              "median_of_clip_medians": round(float(np.median([c["median"] for c in per_clip.values()])), 3),
              "worst": round(float(np.max(pooled)), 3), "max_frames": args.max_frames, "machine": machine()}
    log.info("all clips: median %.3f, worst %.3f", result["median"], result["worst"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
