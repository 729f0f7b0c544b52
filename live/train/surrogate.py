"""A small CNN that reads what MediaPipe reads (jawOpen, smiles, blinks, brows, yaw, pitch) from a 128² render,
so an expression direction can be optimised through the generator (live.train.identity_refine).

Its data are faces moved along the calibrated encoder's expression directions and pose rows (open jaws,
blinks and smiles are common there, rare among random faces), rendered at 256² and labelled by MediaPipe.
Shards are seeded by their index and written atomically: a restarted job keeps what exists.

    python -m live.train.surrogate --samples 3500     # 16 min in all on 2 cores (render and label ~10, train ~5)
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from live.render import to_uint8
from live.train.data import CALIBRATION_SEEDS, POOL, POOL_BASE, write_npz

log = logging.getLogger("live.train.surrogate")

OUT = ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "eyeBlinkLeft", "eyeBlinkRight", "browInnerUp", "yaw", "pitch")
DATA = Path.home() / ".cache/live/data/surrogate-v1"
SHARD = 250
SIDE = 128  # the surrogate's input side (renders are 256², average-pooled by 2)


class Surrogate(nn.Module):
    """[N,3,128,128] in [-1,1] -> [N,8] MediaPipe readouts (OUT: blendshapes; yaw and pitch in degrees / 30)."""

    def __init__(self):
        super().__init__()
        ch = [3, 32, 64, 96, 128, 128]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2 if i < 4 else 1, padding=1)
                                   for i, (a, b) in enumerate(itertools.pairwise(ch)))
        self.fc = nn.Sequential(nn.Linear(128 * 8 * 8, 256), nn.ReLU(), nn.Linear(256, len(OUT)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.relu(conv(x))
        return self.fc(x.flatten(1))


def readouts(signals: np.ndarray) -> np.ndarray:
    """face_signals rows [N,55] -> the surrogate's targets [N,8]."""
    from live.models.encoder import SIGNAL_INDEX

    return np.stack([signals[:, SIGNAL_INDEX[n]] for n in OUT], 1).astype(np.float32)


def render_shard(faces, enc, index: int, count: int) -> dict[str, np.ndarray]:
    """`count` faces moved along random mixes of the encoder's directions and pose rows, seeded by `index`."""
    from live.models.encoder import SIGNAL_INDEX

    rng = np.random.RandomState(7_000_003 + index)
    dirs = torch.from_numpy(enc.response.directions)
    rows = torch.from_numpy(enc.response.matrix.reshape(-1, enc.k, 512)[[SIGNAL_INDEX["yaw"], SIGNAL_INDEX["pitch"]]])
    pool = [s for s in range(POOL_BASE, POOL_BASE + POOL) if s not in CALIBRATION_SEEDS]
    images, labels = [], []
    for _ in range(count):
        w = faces.w(int(pool[rng.randint(len(pool))]))
        c = rng.uniform(-1.0, 2.0, len(dirs)) * (rng.rand(len(dirs)) < 0.6)
        pose = rng.randn(2) * 8.0 * (rng.rand() < 0.7) / 30.0
        off = torch.einsum("j,jkc->kc", torch.from_numpy(c).float(), dirs) + \
            torch.einsum("j,jkc->kc", torch.from_numpy(pose).float(), rows)
        img = faces.render(w, off)  # [1,3,256,256]
        sig, _, _ = faces.read(img, describe=False)
        if sig is None:
            continue
        images.append(to_uint8(F.avg_pool2d(img, 2).numpy()).transpose(2, 0, 1))  # [3,128,128]
        labels.append(sig)
    return {"images": np.stack(images), "signals": np.stack(labels).astype(np.float32)}


def make_data(data: Path, samples: int, encoder_path: Path | None = None) -> None:
    from live.assets import AssetStore
    from live.encoder import load_encoder
    from live.models.encoder import CALIBRATED_PATH
    from live.train.generated_faces import GeneratedFaces

    encoder_path = encoder_path or CALIBRATED_PATH
    enc = load_encoder(encoder_path)
    data.mkdir(parents=True, exist_ok=True)
    meta = {"encoder_sha256": hashlib.sha256(encoder_path.read_bytes()).hexdigest(), "shard": SHARD, "side": SIDE}
    meta_path = data / "dataset.json"
    if meta_path.exists() and json.loads(meta_path.read_text()) != meta:
        raise SystemExit(f"{data} holds surrogate data of another encoder or layout; use another --data")
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    shards = range((samples + SHARD - 1) // SHARD)
    todo = [i for i in shards if not (data / f"shard-{i:04d}.npz").exists()]
    log.info("surrogate data %s: %d of %d shards exist", data, len(shards) - len(todo), len(shards))
    if not todo:
        return
    faces = GeneratedFaces(AssetStore(progress=False), enc.k)
    t0 = time.time()
    try:
        for n, i in enumerate(todo, 1):
            write_npz(data / f"shard-{i:04d}.npz", render_shard(faces, enc, i, SHARD))
            left = (time.time() - t0) / n * (len(todo) - n)
            log.info("shard %d/%d written, about %.0f min left", len(shards) - len(todo) + n, len(shards), left / 60)
    finally:
        faces.close()


def load_data(data: Path) -> tuple[torch.Tensor, torch.Tensor]:
    shards = sorted(data.glob("shard-*.npz"))
    if not shards:
        raise SystemExit(f"no surrogate data in {data}: run python -m live.train.surrogate")
    parts = [np.load(s) for s in shards]
    x = torch.from_numpy(np.concatenate([p["images"] for p in parts])).float() / 127.5 - 1
    y = torch.from_numpy(readouts(np.concatenate([p["signals"] for p in parts])))
    return x, y


def train(x: torch.Tensor, y: torch.Tensor, epochs: int) -> tuple[Surrogate, dict]:
    """Adam with a one-cycle schedule; small shifts and colour changes as augmentation; the first tenth held out."""
    torch.manual_seed(0)
    held = len(x) // 10
    xtr, ytr, xte, yte = x[held:], y[held:], x[:held], y[:held]
    weight = torch.tensor([1, 1, 1, 1, 1, 1, 3, 3.0])  # angles / 30 are small numbers
    net, batch = Surrogate(), 64
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * (len(xtr) // batch))
    rng = np.random.RandomState(0)
    with torch.enable_grad():
        for epoch in range(epochs):
            perm = torch.randperm(len(xtr))
            net.train()
            for i in range(0, len(xtr) - batch + 1, batch):
                idx = perm[i:i + batch]
                dy, dx = (int(v) for v in rng.randint(-4, 5, 2))
                xb = torch.roll(xtr[idx], (dy, dx), (2, 3))
                xb = xb * (1 + 0.1 * torch.randn(len(xb), 1, 1, 1)) + 0.1 * torch.randn(len(xb), 3, 1, 1)
                loss = ((net(xb) - ytr[idx]).square() * weight).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
            log.info("epoch %d/%d, training loss %.4f", epoch + 1, epochs, loss.item())
    net.eval()
    with torch.no_grad():
        pred = net(xte)
    corr = {n: round(float(np.corrcoef(pred[:, j], yte[:, j])[0, 1]), 3) for j, n in enumerate(OUT)}
    mae = {n: round(float((pred[:, j] - yte[:, j]).abs().mean()), 4) for j, n in enumerate(OUT)}
    return net.requires_grad_(False), {"held_out": held, "trained_on": len(xtr), "corr": corr, "mae": mae}


def load_surrogate(data: Path = DATA) -> Surrogate:
    from safetensors.torch import load_file

    path = data / "surrogate.safetensors"
    if not path.is_file():
        raise SystemExit(f"no MediaPipe surrogate at {path}: run python -m live.train.surrogate")
    net = Surrogate()
    net.load_state_dict(load_file(path))
    return net.eval().requires_grad_(False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help=f"data and weights folder (default {DATA})")
    p.add_argument("--samples", type=int, default=3500, help="renders to label (default 3500)")
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    p.add_argument("--encoder", type=Path, help="calibrated encoder whose directions the faces move along "
                                                "(default: the committed one)")
    args = p.parse_args(argv)
    if args.samples < SHARD or args.epochs < 1:
        p.error(f"--samples must be >= {SHARD} and --epochs >= 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from safetensors.torch import save_file

    torch.set_grad_enabled(False)
    t0 = time.time()
    make_data(args.data, args.samples, args.encoder)
    x, y = load_data(args.data)
    net, report = train(x, y, args.epochs)
    tmp = args.data / ".surrogate.safetensors.tmp"
    save_file(net.state_dict(), tmp)
    tmp.replace(args.data / "surrogate.safetensors")
    report["seconds"] = round(time.time() - t0, 1)
    (args.data / "surrogate.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("held-out correlation %s; wrote %s (%.0f s)", report["corr"], args.data / "surrogate.safetensors",
             report["seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
