"""Training data for the deformation encoder: generated faces labelled by the tracker.

Sample i is fully determined by i (seeded), so the dataset is reproducible and the job resumable:

- "random" samples: one w (truncation 0.7) on all layers: the spread of faces in W;
- "local" samples: an identity from a fixed pool, with only its first K style layers moved (towards
  another face, and along random directions, by random amounts): what reenactment does to a face.

Each is rendered at 256² (early-exit head: MediaPipe runs at 256 px anyway), tracked by MediaPipe in
IMAGE mode, and stored with its styles. Shards of `--shard` samples are written atomically
(`shard-000123.npz`); a restarted job skips the shards that exist. Progress goes to the log.

    python -m live.train.data --out ~/.cache/live/data/encoder-v1 --samples 20000 > data.log 2>&1 &

Layout of a shard (npz, no pickle): index [n] int64, kind [n] int8 (0 random, 1 local), identity [n]
int64 (seed of the identity, -1 for random), styles [n,K,512] float16 (first K style layers), w_id
[n,512] float16 (the identity's w, on layers >= K), face [n] bool, blendshapes [n,52] float32, pose
[n,3] float32 (yaw, pitch, roll degrees), translation [n,3] float32, landmarks [n,478,3] float16.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from live.models.generator import MobileStyleGAN, z_from_seed

log = logging.getLogger("live.train.data")

POOL = 256  # identities for "local" samples: seeds 50_000 .. 50_000 + POOL - 1
POOL_BASE = 50_000
HELD_OUT_BASE = POOL_BASE + int(POOL * 0.9)  # pool seeds from here on: held out of the linear fit (live.train.fit_encoder)
CALIBRATION_BASE = HELD_OUT_BASE + 2  # held-out seeds the calibration measures on (live.train.calibrate_encoder)...
CALIBRATION_SEEDS = range(CALIBRATION_BASE, CALIBRATION_BASE + 32)  # ...kept out of the surrogate's data too
TRUNCATION = 0.7
DATA_VERSION = 1


def sample_styles(gen: MobileStyleGAN, index: int, k: int) -> tuple[int, int, torch.Tensor]:
    """(kind, identity seed or -1, styles [1,23,512]) for sample `index`."""
    rng = np.random.RandomState(1_000_003 * DATA_VERSION + index)
    if rng.rand() < 0.3:  # random face
        w = gen.mapping(z_from_seed(100_000 + index), TRUNCATION)
        return 0, -1, w[:, None].expand(1, gen.num_layers, -1).clone()
    ident = POOL_BASE + int(rng.randint(POOL))
    w_id = gen.mapping(z_from_seed(ident), TRUNCATION)
    styles = w_id[:, None].expand(1, gen.num_layers, -1).clone()
    other = gen.mapping(z_from_seed(200_000 + index), TRUNCATION)
    towards = float(rng.uniform(0.0, 1.0)) * (other - w_id)  # [1,512]
    jitter = torch.from_numpy(rng.randn(1, k, 512).astype(np.float32)) * float(rng.uniform(0.0, 0.6))
    styles[:, :k] = w_id[:, None] + towards[:, None] + jitter * (gen.w_avg - w_id).norm() / 512 ** 0.5
    return 1, ident, styles


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def make_shard(gen, tracker, heads, start: int, count: int, k: int, size: int, batch: int) -> dict[str, np.ndarray]:
    from live.models.early_exit import render_styles
    from live.render import to_uint8

    rows = {key: [] for key in ("index", "kind", "identity", "styles", "w_id", "face", "blendshapes", "pose",
                                "translation", "landmarks")}
    for b0 in range(start, start + count, batch):
        idx = list(range(b0, min(b0 + batch, start + count)))
        samples = [sample_styles(gen, i, k) for i in idx]
        styles = torch.cat([s for _, _, s in samples])
        images = render_styles(gen, styles, size, heads).numpy()
        for j, i in enumerate(idx):
            kind, ident, st = samples[j]
            faces = tracker.detect(to_uint8(images[j:j + 1]), 0.0)
            f = faces[0] if faces else None
            rows["index"].append(i)
            rows["kind"].append(kind)
            rows["identity"].append(ident)
            rows["styles"].append(st[0, :k].numpy().astype(np.float16))
            rows["w_id"].append(st[0, -1].numpy().astype(np.float16))
            rows["face"].append(f is not None)
            rows["blendshapes"].append(f.blendshapes if f else np.zeros(52, np.float32))
            rows["pose"].append(np.array([f.yaw, f.pitch, f.roll], np.float32) if f else np.zeros(3, np.float32))
            rows["translation"].append(np.array(f.translation, np.float32) if f else np.zeros(3, np.float32))
            rows["landmarks"].append((f.landmarks if f else np.zeros((478, 3), np.float32)).astype(np.float16))
    dtypes = {"index": np.int64, "kind": np.int8, "identity": np.int64, "face": bool}
    return {key: np.asarray(v, dtype=dtypes.get(key)) for key, v in rows.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="dataset folder (created; existing shards are kept)")
    p.add_argument("--samples", type=int, default=20_000, help="total samples (default 20000)")
    p.add_argument("--shard", type=int, default=250, help="samples per shard file (default 250)")
    p.add_argument("--k", type=int, default=8, help="style layers that vary in local samples (default 8)")
    p.add_argument("--size", type=int, default=256, choices=[256, 512], help="render size (default 256)")
    p.add_argument("--batch", type=int, default=1,
                   help="faces rendered per call (default 1: on CPU, larger batches spill the caches and run "
                        "~4x slower per face)")
    p.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from live.assets import AssetStore
    from live.landmarker import FaceTracker
    from live.models.early_exit import load_heads
    from live.models.generator import load_mobilestylegan

    torch.set_grad_enabled(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    store = AssetStore(progress=False)
    gen = load_mobilestylegan(store)
    heads = load_heads()
    if heads is None:
        raise SystemExit("early-exit heads are missing: run `python -m live.models.early_exit` first")
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"version": DATA_VERSION, "k": args.k, "size": args.size, "shard": args.shard, "pool": POOL,
            "truncation": TRUNCATION, "generator_sha256": gen.source_sha256, "samples": args.samples}
    meta_path = args.out / "dataset.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if {k: old.get(k) for k in ("version", "k", "size", "shard", "generator_sha256")} != \
                {k: meta[k] for k in ("version", "k", "size", "shard", "generator_sha256")}:
            raise SystemExit(f"{args.out} holds a dataset made with other settings ({old}); use another --out")
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    tracker = FaceTracker(store.resolve("face_landmarker"), num_faces=1, video=False)
    tracker.open()
    shards = range(0, args.samples, args.shard)
    done = sum((args.out / f"shard-{s // args.shard:06d}.npz").exists() for s in shards)
    log.info("dataset %s: %d of %d shards exist", args.out, done, len(shards))
    t0, made = time.time(), 0
    try:
        for start in shards:
            path = args.out / f"shard-{start // args.shard:06d}.npz"
            if path.exists():
                continue
            arrays = make_shard(gen, tracker, heads, start, min(args.shard, args.samples - start), args.k,
                                args.size, args.batch)
            write_npz(path, arrays)
            made += len(arrays["index"])
            done += 1
            rate = made / (time.time() - t0)
            left = (len(shards) - done) * args.shard / max(rate, 1e-9)
            log.info("shard %d/%d written: %.1f samples/s, face found in %.1f%%, about %.0f min left",
                     done, len(shards), rate, 100 * arrays["face"].mean(), left / 60)
    finally:
        tracker.close()
    log.info("dataset complete: %d shards", done)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
