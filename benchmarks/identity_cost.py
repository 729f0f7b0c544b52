"""Identity cost per unit of expression: real people against the avatar's expression directions.

    python benchmarks/identity_cost.py [--clips a.mp4,b.mp4] [--json out.json]

Real people: every 2nd frame of the driving clips (../shared/data/driving/*.mp4), its dlib distance to
the clip's first frame, and the change of its MediaPipe signals; fitted as distance² = floor² + sum of
(cost_i * change_i)² (non-negative least squares), where the floor is what lighting, compression and
small moves cost with no expression at all. The avatar: the calibrated encoder's measured responses (mean
over its calibration faces), distance per unit of tracked change near 0.3 of the signal, and its
per-degree head-angle costs. Where the avatar's cost is several times a real person's, the direction
changes more than the expression: that is the number a better encoder has to bring down.
These are dlib/MediaPipe measurements of live's own outputs, not published metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fps import machine_info
from quality import SHARED, driver_frames

from live.assets import AssetStore

log = logging.getLogger("benchmarks.identity_cost")
SIGNALS = {"jaw": ("jawOpen",), "smile": ("mouthSmileLeft", "mouthSmileRight"),
           "blink": ("eyeBlinkLeft", "eyeBlinkRight"), "brows": ("browInnerUp",)}


def nonnegative_lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares with x >= 0 (drop negative unknowns and solve again until none is left)."""
    free = np.ones(a.shape[1], bool)
    while True:
        x = np.zeros(a.shape[1])
        x[free] = np.linalg.lstsq(a[:, free], b, rcond=None)[0]
        if np.all(x >= 0):
            return x
        free &= x > 0


def real_costs(clips: list[str], store: AssetStore) -> dict:
    from live.metrics.face_distance import IdentityMetric
    from live.models.encoder import SIGNAL_INDEX, face_signals

    metric = IdentityMetric(store)
    rows = []
    for clip in clips:
        first = None
        _, frames, raw = driver_frames(clip, 150, store.resolve("face_landmarker"))  # raw: tracked unsmoothed
        for i, (frame, face) in enumerate(zip(frames, raw, strict=True), start=1):
            if face is None or (first is not None and i % 2):
                continue
            desc = metric.descriptor(frame.image)
            if desc is None:
                continue
            sig = face_signals(face)
            if first is None:
                first = (sig, desc)
                continue
            x = sig - first[0]
            rows.append([metric.distance(desc, first[1])]
                        + [float(np.mean([x[SIGNAL_INDEX[n]] for n in names])) for names in SIGNALS.values()]
                        + [x[SIGNAL_INDEX["yaw"]] * 30.0, x[SIGNAL_INDEX["pitch"]] * 30.0])
        log.info("%s: %d frames measured so far", Path(clip).stem, len(rows))
    r = np.array(rows)
    coef = nonnegative_lstsq(np.c_[np.ones(len(r)), r[:, 1:] ** 2], r[:, 0] ** 2)
    names = [*SIGNALS, "yaw_per_deg", "pitch_per_deg"]
    return {"frames": len(r), "floor": round(float(np.sqrt(coef[0])), 3),
            "per_unit": {n: round(float(np.sqrt(c)), 4) for n, c in zip(names, coef[1:], strict=True)},
            "distance_median": round(float(np.median(r[:, 0])), 3)}


def avatar_costs(enc) -> dict:
    """Distance per unit of tracked change near 0.3 (interpolated along the measured response)."""
    out = {}
    for name in SIGNALS:
        rows = [r for r in enc.meta["expressions_measured"][name]["response"] if r["c"] > 0 and np.isfinite(r["got"])]
        got = np.array([0.0] + [r["got"] for r in rows])
        ident = np.array([0.0] + [r["identity"] for r in rows])
        reach = float(np.maximum.accumulate(got)[-1])
        at = min(0.3, reach)
        k = int(np.argmax(got >= at - 1e-9))
        out[name] = round(float(np.interp(at, got[:k + 1], ident[:k + 1]) / at), 4) if at > 0.02 else None
    out["yaw_per_deg"], out["pitch_per_deg"] = (round(float(c), 4) for c in enc.response.governor.pose_cost)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", help="comma-separated videos (default: ../shared/data/driving/*.mp4)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from live.encoder import Encoder, load_encoder

    clips = args.clips.split(",") if args.clips else [str(c) for c in sorted(SHARED.glob("*.mp4"))]
    if not clips:
        p.error(f"no driving clips: pass --clips or put some in {SHARED}")
    enc = load_encoder()
    if not isinstance(enc, Encoder) or enc.response.governor is None:
        p.error("the default encoder has no measured identity costs (run python -m live.train.calibrate_encoder)")
    real, avatar = real_costs(clips, AssetStore(progress=sys.stderr.isatty())), avatar_costs(enc)
    print("identity cost (dlib distance) per unit of tracked change; not a published metric")
    print(f"real people: {real['frames']} frames of {len(clips)} clips, floor {real['floor']} "
          f"(no expression change), median distance to the first frame {real['distance_median']}")
    print(f"{'signal':<16}{'real people':>12}{'avatar':>10}{'avatar/real':>13}")
    for n, v in real["per_unit"].items():
        a = avatar[n]
        ratio = f"{a / v:.1f}" if a is not None and v > 1e-4 else "-"
        print(f"{n:<16}{v:>12}{a if a is not None else '-':>10}{ratio:>13}")
    if args.json:
        Path(args.json).write_text(json.dumps({"real": real, "avatar_mean": avatar, "machine": machine_info(),
                                               "encoder": enc.meta.get("kind")}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
