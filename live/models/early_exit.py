"""Early-exit output heads: 256² and 512² faces without running the most expensive blocks.

MobileStyleGAN ends with a 1x1 convolution to 12 wavelet bands at 512² and one inverse Haar step to
1024². A head here does the same from an earlier block: from block 4 (256 channels at 128²) a 1x1 conv
to 12 bands gives a 256² face, skipping blocks 5 and 6; from block 5 (128 channels at 256²) a 512² face.
The target is the full network's output downsampled by area averaging. Features -> bands is linear in
the head's weights, so the heads are fitted in closed form (ridge regression) on generated faces:
minutes on a CPU, reproducible from a clean checkout:

    python -m live.models.early_exit --samples 48        # writes live/models/early_exit_heads.*
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from live.models.generator import MobileStyleGAN, broadcast_styles, z_from_seed
from live.models.mobilestylegan import bands_to_image, haar_analysis

log = logging.getLogger(__name__)

HEADS_PATH = Path(__file__).with_name("early_exit_heads.safetensors")
META_PATH = Path(__file__).with_name("early_exit_heads.json")
EXIT_BLOCK = {256: 4, 512: 5}  # output side -> block whose features the head reads
TRAIN_SEEDS = range(10_000, 20_000)  # seeds for fitting; evaluation uses seeds below 10_000


def sample_styles(gen: MobileStyleGAN, seed: int, truncation: float = 0.7) -> torch.Tensor:
    """W+ styles of a seed, with the first 8 layers moved towards another face (offsets are applied
    there), so the heads see the kind of styles live renders."""
    styles = broadcast_styles(gen.mapping(z_from_seed(seed), truncation), gen.num_layers)
    other = gen.mapping(z_from_seed(seed + 777_777), truncation)
    mix = float(np.random.RandomState(seed).uniform(0.0, 0.5))
    styles[:, :8] = styles[:, :8] * (1 - mix) + other[:, None] * mix
    return styles


@torch.inference_mode()
def _pair(gen: MobileStyleGAN, styles: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [C,H,W] of the exit block, target bands [12,H,W]) for one sample."""
    s = gen.synthesis_net
    mods = s.modulations(styles)
    feats = s.render(mods, 1, features_of=EXIT_BLOCK[size])
    full = s.render(mods, 1)
    target = haar_analysis(F.avg_pool2d(full, full.shape[-1] // size))
    return feats[0], target[0]


def fit(gen: MobileStyleGAN, size: int, samples: int, ridge: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Head weight [12,C,1,1] and bias [1,12,1,1] by ridge regression over `samples` generated faces."""
    xtx = xty = None
    for i, seed in enumerate(TRAIN_SEEDS[:samples]):
        feats, target = _pair(gen, sample_styles(gen, seed), size)
        x = torch.cat([feats.reshape(feats.shape[0], -1), torch.ones(1, feats[0].numel())]).double()  # [C+1,P]
        y = target.reshape(12, -1).double()  # [12,P]
        xtx = x @ x.T if xtx is None else xtx + x @ x.T
        xty = x @ y.T if xty is None else xty + x @ y.T
        log.info("size %d: sample %d/%d", size, i + 1, samples)
    reg = ridge * torch.trace(xtx) / xtx.shape[0] * torch.eye(xtx.shape[0], dtype=torch.float64)
    sol = torch.linalg.solve(xtx + reg, xty)  # [C+1,12]
    c = sol.shape[0] - 1
    return sol[:c].T.float().reshape(12, c, 1, 1).contiguous(), sol[c].float().reshape(1, 12, 1, 1).contiguous()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1,1] (peak-to-peak 2)."""
    mse = F.mse_loss(a.clamp(-1, 1), b.clamp(-1, 1)).item()
    return float(10 * np.log10(4.0 / max(mse, 1e-12)))


def load_heads() -> dict[int, tuple[torch.Tensor, torch.Tensor]] | None:
    """{size: (weight, bias)} from the committed file, or None when it is not there."""
    if not HEADS_PATH.is_file():
        return None
    from safetensors.torch import load_file

    t = load_file(str(HEADS_PATH))
    return {size: (t[f"head{size}.weight"], t[f"head{size}.bias"]) for size in EXIT_BLOCK}


@torch.inference_mode()
def render_styles(gen: MobileStyleGAN, styles: torch.Tensor, size: int,
                  heads: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Any W+ styles [N,23,512] -> [N,3,size,size] through the early-exit head (no fixed identity)."""
    s = gen.synthesis_net
    weight, bias = heads[size]
    feats = s.render(s.modulations(styles), styles.shape[0], features_of=EXIT_BLOCK[size])
    return bands_to_image(F.conv2d(feats, weight) + bias)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=48, help="generated faces to fit on (default 48)")
    p.add_argument("--eval", type=int, default=8, help="held-out faces to measure PSNR on (default 8)")
    p.add_argument("--out", type=Path, default=HEADS_PATH, help="where to write the heads")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from safetensors.torch import save_file

    from live.assets import AssetStore
    from live.models.generator import load_mobilestylegan
    from live.models.specialize import FixedIdentitySynthesis

    torch.manual_seed(0)
    t0 = time.time()
    gen = load_mobilestylegan(AssetStore())
    tensors, metrics = {}, {}
    for size in EXIT_BLOCK:
        weight, bias = fit(gen, size, args.samples)
        tensors[f"head{size}.weight"], tensors[f"head{size}.bias"] = weight, bias
        scores = []
        with torch.inference_mode():
            for seed in range(args.eval):
                styles = sample_styles(gen, seed)
                full = gen.synthesis(styles)
                ref = F.avg_pool2d(full, full.shape[-1] // size)
                fast = FixedIdentitySynthesis(gen.synthesis_net, styles, 0, head=(EXIT_BLOCK[size], weight, bias))
                scores.append(psnr(fast(torch.zeros(1, 0, 512)), ref))
        metrics[str(size)] = {"psnr_db_mean": round(float(np.mean(scores)), 2),
                              "psnr_db_min": round(float(np.min(scores)), 2), "eval_faces": args.eval}
        log.info("size %d: PSNR vs the downsampled full output %.2f dB (min %.2f)", size, np.mean(scores),
                 np.min(scores))
    meta = {"generator_sha256": gen.source_sha256, "samples": args.samples, "train_seeds": "10000..",
            "eval_seeds": f"0..{args.eval - 1}", "ridge": 1e-3, "metrics": metrics,
            "seconds": round(time.time() - t0, 1), "date": datetime.date.today().isoformat(),
            "torch": torch.__version__}
    fd, tmp = tempfile.mkstemp(prefix=".heads.", dir=args.out.parent)
    os.close(fd)
    save_file(tensors, tmp, metadata={"generator_sha256": gen.source_sha256})
    os.replace(tmp, args.out)
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("wrote %s and %s (%.0f s)", args.out, args.out.with_suffix(".json"), time.time() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
