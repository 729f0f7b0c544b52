"""Fit the happy/sad emotion direction (a linear SVM normal) from the encoder's training data.

    python -m live.train.fit_emotion --data ~/.cache/live/data/encoder-v1     # ~1 min on 2 cores

Uses the "local" samples of `live.train.data` (an identity with only its first K style layers moved):
feature = the offset of those layers from the identity, label = happy when MediaPipe's mean mouthSmile
rose by more than --margin over the identity's own neutral, sad when it fell by more than that. A linear
SVM (hinge loss + L2, full-batch L-BFGS) separates them; its unit normal, scaled by the spread of the
data along it, is written to live/models/emotion_happy_sad.safetensors with metadata (held-out accuracy).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from live.atomic import save_atomic
from live.frames import BLENDSHAPE_NAMES
from live.models.emotion import DIRECTION_PATH

log = logging.getLogger("live.train.fit_emotion")
SMILES = [BLENDSHAPE_NAMES.index(n) for n in ("mouthSmileLeft", "mouthSmileRight")]


def load_samples(data: Path, margin: float) -> tuple[np.ndarray, np.ndarray, dict]:
    ids = np.load(data / "identities.npz")
    neutral = {int(s): v for s, v in zip(ids["seed"], ids["signals"], strict=True)}
    meta = json.loads((data / "dataset.json").read_text())
    xs, ys = [], []
    for shard in sorted(data.glob("shard-*.npz")):
        d = np.load(shard)
        for i in np.where((d["kind"] == 1) & d["face"])[0]:
            smile = d["blendshapes"][i][SMILES].mean() - neutral[int(d["identity"][i])][SMILES].mean()
            if abs(smile) > margin:
                w_id = d["w_id"][i].astype(np.float32)
                xs.append((d["styles"][i].astype(np.float32) - w_id).reshape(-1))
                ys.append(1.0 if smile > 0 else -1.0)
    if not xs:
        raise SystemExit(f"no labelled samples in {data}: build it with `python -m live.train.data`")
    return np.stack(xs), np.array(ys, np.float32), meta


def fit_svm(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    xt, yt = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        margin = 1 - yt * (xt @ w + b)
        loss = torch.clamp(margin, min=0).pow(2).mean() + l2 * w.pow(2).sum()  # squared hinge: smooth
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path.home() / ".cache/live/data/encoder-v1")
    p.add_argument("--margin", type=float, default=0.3, help="smile change that makes a label (default 0.3)")
    p.add_argument("--l2", type=float, default=1e-3)
    p.add_argument("--out", type=Path, default=DIRECTION_PATH)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.time()
    x, y, data_meta = load_samples(args.data, args.margin)
    k = data_meta["k"]
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y))
    cut = int(0.8 * len(y))
    tr, te = order[:cut], order[cut:]
    w, b = fit_svm(x[tr], y[tr], args.l2)
    acc = float(np.mean(np.sign(x[te] @ w + b) == y[te]))
    n = w / np.linalg.norm(w)
    spread = float(np.std(x @ n))
    direction = (n * spread).reshape(1, k, 512).astype(np.float32)
    log.info("%d samples (%d happy, %d sad), held-out accuracy %.3f, spread %.3f", len(y), int((y > 0).sum()),
             int((y < 0).sum()), acc, spread)
    from safetensors.numpy import save_file

    save_atomic(args.out, lambda tmp: save_file({"direction": direction}, tmp,
                                                metadata={"generator_sha256": data_meta["generator_sha256"]}))
    meta = {"kind": "linear SVM normal (squared hinge, L2), happy + / sad -", "k": k,
            "generator_sha256": data_meta["generator_sha256"], "data": str(args.data.name),
            "data_samples": data_meta["samples"], "labelled": len(y), "happy": int((y > 0).sum()),
            "sad": int((y < 0).sum()), "margin": args.margin, "l2": args.l2, "heldout_accuracy": round(acc, 4),
            "alpha_unit": "one standard deviation of the data along the normal", "spread": round(spread, 4),
            "seconds": round(time.time() - t0, 1), "date": datetime.date.today().isoformat()}
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("wrote %s (%.0f s)", args.out, time.time() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
