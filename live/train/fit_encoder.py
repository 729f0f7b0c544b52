"""Fit the linear deformation encoder (Bounareli et al.'s baseline) in closed form on the generated data.

    python -m live.train.data --out DATA --samples 20000        # first (background, resumable)
    python -m live.train.fit_encoder --data DATA                # minutes; writes live/models/encoder_linear.*

For every "local" sample (an identity with only its first K style layers moved): the change of the
tracked signals against the identity's own neutral render, delta_p [55], and the change of styles,
delta_w [K*512]. Ridge regression gives A with delta_w ~= delta_p @ A. Identities are split: the last
10% are held out, and the metadata records how well the fitted directions *move the tracked signals* on
them (render identity + A·delta_p, track it, correlate the achieved change with the asked change).
"""

from __future__ import annotations

import argparse
import datetime
import logging
import time
from pathlib import Path

import numpy as np
import torch

from live.models.encoder import (
    SIGNAL_INDEX,
    SIGNAL_NAMES,
    WEIGHTS_PATH,
    LinearEncoder,
    face_signals,
    signal_vector,
)
from live.train.data import HELD_OUT_BASE, POOL, POOL_BASE, TRUNCATION, write_npz

log = logging.getLogger("live.train.fit_encoder")
REPORT = {"yaw": 52, "pitch": 53, "jawOpen": 25, "mouthSmileLeft": 44, "eyeBlinkLeft": 9, "browInnerUp": 3}


def load_shards(data: Path) -> dict[str, np.ndarray]:
    shards = sorted(data.glob("shard-*.npz"))
    if not shards:
        raise SystemExit(f"no shards in {data}: run `python -m live.train.data --out {data}` first")
    parts = [dict(np.load(p)) for p in shards]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def neutral_signals(gen, tracker, heads, data: Path, size: int) -> dict[int, np.ndarray]:
    """Signals of every pool identity rendered with no offset (cached in DATA/identities.npz)."""
    from live.models.early_exit import render_styles
    from live.models.generator import z_from_seed
    from live.render import to_uint8

    path = data / "identities.npz"
    if path.exists():
        d = np.load(path)
        return {int(s): v for s, v in zip(d["seed"], d["signals"], strict=True) if not np.isnan(v).any()}
    seeds, signals = [], []
    for seed in range(POOL_BASE, POOL_BASE + POOL):
        w = gen.mapping(z_from_seed(seed), TRUNCATION)
        img = render_styles(gen, w[:, None].expand(1, gen.num_layers, -1).contiguous(), size, heads).numpy()
        faces = tracker.detect(to_uint8(img), 0.0)
        f = faces[0] if faces else None
        seeds.append(seed)
        signals.append(face_signals(f) if f else np.full(55, np.nan, np.float32))
    write_npz(path, {"seed": np.array(seeds), "signals": np.array(signals, np.float32)})
    return neutral_signals(gen, tracker, heads, data, size)


# Signals the encoder listens to by default: head pose and the expressions that read on a face. The
# other blendshapes (gaze, squints, mouth shapes...) move little in generated faces, and what the
# regression finds for them is mostly cross-talk that shows on real drivers. Measured with
# benchmarks/quality.py on d0/d3/d6/d12 x seed 0 (100 frames each; 9k samples): all 55 signals ->
# identity median 0.445, yaw corr 0.89; 26 signals -> 0.369, 0.92; these (with roll) -> 0.284, 0.945.
# Roll is left out: generated faces are FFHQ-aligned (upright), so the encoder stage applies the
# driver's roll as an in-plane rotation of the output instead.
DEFAULT_SIGNALS = ("yaw", "pitch", "jawOpen", "mouthSmileLeft", "mouthSmileRight", "eyeBlinkLeft",
                   "eyeBlinkRight", "browInnerUp", "browDownLeft", "browDownRight")


def signal_columns(names: str) -> list[int]:
    """Column indices in the 55-signal vector for a comma-separated list ("all" = every column)."""
    if names == "all":
        return list(range(len(SIGNAL_NAMES)))
    cols = []
    for n in names.split(","):
        if n.strip() not in SIGNAL_INDEX:
            raise SystemExit(f"unknown signal {n!r}; known: {', '.join(SIGNAL_NAMES)}")
        cols.append(SIGNAL_INDEX[n.strip()])
    return sorted(cols)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="dataset folder from live.train.data")
    p.add_argument("--ridge", type=float, default=1e-2, help="ridge strength, relative to the mean eigenvalue")
    p.add_argument("--eval", type=int, default=120, help="held-out samples rendered to measure (default 120)")
    p.add_argument("--signals", default=",".join(DEFAULT_SIGNALS),
                   help="comma-separated signals the encoder listens to, or 'all' (default: pose and the main "
                        "expressions)")
    p.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import json

    from live.assets import AssetStore
    from live.landmarker import FaceTracker
    from live.models.early_exit import load_heads, render_styles
    from live.models.generator import load_mobilestylegan
    from live.render import to_uint8

    torch.set_grad_enabled(False)
    t0 = time.time()
    meta_in = json.loads((args.data / "dataset.json").read_text())
    k, size = meta_in["k"], meta_in["size"]
    store = AssetStore(progress=False)
    gen = load_mobilestylegan(store)
    if meta_in["generator_sha256"] != gen.source_sha256:
        raise SystemExit("the dataset was made with another generator")
    heads = load_heads()
    tracker = FaceTracker(store.resolve("face_landmarker"), num_faces=1, video=False)
    tracker.open()
    try:
        neutral = neutral_signals(gen, tracker, heads, args.data, size)
        d = load_shards(args.data)
        keep = (d["kind"] == 1) & d["face"] & np.isin(d["identity"], list(neutral))
        ident = d["identity"][keep]
        dp = signal_vector(d["blendshapes"][keep], d["pose"][keep]) - np.stack([neutral[int(i)] for i in ident])
        w_id = d["w_id"][keep].astype(np.float32)
        dw = (d["styles"][keep].astype(np.float32) - w_id[:, None]).reshape(len(ident), -1)
        held = ident >= HELD_OUT_BASE
        x, y = dp[~held].astype(np.float64), dw[~held].astype(np.float64)
        xtx = x.T @ x
        reg = args.ridge * np.trace(xtx) / xtx.shape[0] * np.eye(xtx.shape[0])
        matrix = np.zeros((dp.shape[1], y.shape[1]), np.float32)  # [55, K*512]; unused signals stay 0
        cols = signal_columns(args.signals)
        sub = np.ix_(cols, cols)
        matrix[cols] = np.linalg.solve(xtx[sub] + reg[sub], (x.T @ y)[cols]).astype(np.float32)
        enc = LinearEncoder(matrix, k)
        log.info("fitted on %d samples (%d identities), held out %d", (~held).sum(), len(set(ident[~held])), held.sum())
        # Held-out check through the generator and the tracker.
        rows = np.flatnonzero(held)[: args.eval]
        asked, got = [], []
        for r in rows:
            styles = w_id[r][None, None].repeat(gen.num_layers, axis=1)
            styles[:, :k] += enc(dp[r])[0]
            img = render_styles(gen, torch.from_numpy(styles), size, heads).numpy()
            faces = tracker.detect(to_uint8(img), 0.0)
            if faces:
                f = faces[0]
                asked.append(dp[r])
                got.append(face_signals(f) - neutral[int(ident[r])])
    finally:
        tracker.close()
    asked, got = np.array(asked), np.array(got)
    metrics = {}
    for name, col in REPORT.items():
        scale = 30.0 if col >= 52 else 1.0
        corr = float(np.corrcoef(asked[:, col], got[:, col])[0, 1]) if asked[:, col].std() > 0 else float("nan")
        gain = float(np.cov(asked[:, col], got[:, col])[0, 1] / max(asked[:, col].var(), 1e-12))
        metrics[name] = {"corr": round(corr, 3), "gain": round(gain, 3),
                         "asked_std": round(float(asked[:, col].std() * scale), 4),
                         "got_std": round(float(got[:, col].std() * scale), 4)}
        log.info("%-15s corr %.2f  gain %.2f  asked std %.3f  achieved std %.3f", name, corr, gain,
                 asked[:, col].std() * scale, got[:, col].std() * scale)
    meta = {"kind": "linear (ridge, closed form)", "generator_sha256": gen.source_sha256, "k": k,
            "data": {"samples_used": int((~held).sum()), "identities": len(set(ident[~held])),
                     "dataset": meta_in}, "ridge": args.ridge, "signals": args.signals,
            "held_out_eval": len(asked), "metrics": metrics,
            "seconds": round(time.time() - t0, 1), "date": datetime.date.today().isoformat()}
    enc.save(args.out, meta)
    log.info("wrote %s (%.0f s)", args.out, time.time() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
