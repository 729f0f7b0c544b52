"""StyleSpace channels (Wu et al., 2021) as W+ offsets, and the search that finds the local ones.

    python -m live.train.style_channels --region eyes     # ~2 min on 2 cores: channels ranked by locality

A style layer's per-channel multipliers are an affine function of its w, so moving exactly one channel of
one layer (and nothing else) is a W+ offset on that layer: the least-norm solution of A dw = amount e_c.
Wu et al. found single channels that each change one local attribute (eyes closed, a smile) and little
else; here a channel's locality is measured the way they measure it, from its gradient map: the image
energy a change of the channel makes inside a region (lips, eyes) against the energy everywhere else,
estimated with random projections of the Jacobian (one backward pass each). The calibration
(`live.train.calibrate_encoder`) then measures the candidates with MediaPipe and dlib; the blink channel it
uses closes both eyes for about a third of the identity change of the distilled blink direction.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch

log = logging.getLogger("live.train.style_channels")

STD_SEEDS = range(100_000, 100_200)  # faces the channel spread is measured on
SEARCH_SEEDS = (50_232, 50_233, 50_234, 50_235, 50_236, 50_237)  # calibration identities
REGIONS = ("lips", "eyes")


def channel_std(gen, layers: int, seeds: range = STD_SEEDS) -> list[torch.Tensor]:
    """Per style layer (the first `layers`), each channel's spread [C] over generated faces."""
    from live.models.generator import z_from_seed
    from live.train.data import TRUNCATION

    ws = torch.cat([gen.mapping(z_from_seed(s), TRUNCATION) for s in seeds])
    s = gen.synthesis_net
    return [s.modulation(layer, ws).std(0) for layer in range(layers)]


def channel_offset(gen, layer: int, channel: int, amount: float, k: int) -> torch.Tensor:
    """W+ offset [k,512] that moves channel `channel` of style layer `layer` by `amount` (in that layer's
    multiplier units) and no other channel of any layer (least-norm w change; layer < k)."""
    if not 0 <= layer < k:
        raise ValueError(f"style layer {layer} is outside the {k} layers the offset covers")
    s = gen.synthesis_net
    zero = torch.zeros(1, 512)
    a = s.modulation(layer, torch.eye(512)) - s.modulation(layer, zero)  # [512,C]: rows = unit w changes
    if not 0 <= channel < a.shape[1]:
        raise ValueError(f"style layer {layer} has {a.shape[1]} channels, not {channel + 1}")
    dw = amount * torch.linalg.pinv(a.double())[channel].float()  # [512]
    out = torch.zeros(k, 512)
    out[layer] = dw
    return out


def _masks(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Soft masks [256,256] of the lips, the eyes, and the rest (both dilated out) from [478,2] px."""
    import cv2

    from live.train.regions import EYES, LIPS, _hull

    lips = _hull(landmarks[LIPS], 4, 256).astype(np.float32)
    eyes = np.maximum(_hull(landmarks[EYES[0]], 3, 256), _hull(landmarks[EYES[1]], 3, 256)).astype(np.float32)
    near = np.maximum(cv2.dilate(lips, np.ones((9, 9))), cv2.dilate(eyes, np.ones((9, 9))))
    return {"lips": lips, "eyes": eyes, "rest": 1.0 - near}


def locality(gen, heads, tracker, seed: int, std: list[torch.Tensor], projections: int) -> dict[str, list[np.ndarray]]:
    """{region: per layer [C] image energy of a one-std change of each channel inside that region}, for
    the face of `seed` rendered at 256² (E over v of (v . J e_c)² = |J e_c|² for v ~ N(0, 1) on the region)."""
    from live.inversion import Renderer
    from live.models.early_exit import EXIT_BLOCK
    from live.models.generator import z_from_seed
    from live.render import to_uint8
    from live.train.data import TRUNCATION

    s, (weight, bias) = gen.synthesis_net, heads[256]
    w = gen.mapping(z_from_seed(seed), TRUNCATION)
    mods = [m.detach() for m in s.modulations(w[:, None].expand(1, gen.num_layers, -1).contiguous())]
    n = len(std)
    leaves = [m.clone().requires_grad_(True) for m in mods[:n]]
    with torch.enable_grad():
        feats = s.render(leaves + mods[n:], 1, features_of=EXIT_BLOCK[256])
        img = Renderer.head(feats, weight, bias)  # [1,3,256,256]
        faces = tracker.detect(to_uint8(img.detach().numpy()), 0.0)
        if not faces:
            raise RuntimeError(f"no face found on seed {seed}")
        energy = {}
        gen_v = torch.Generator().manual_seed(seed)
        for name, mask in _masks(faces[0].landmarks[:, :2] * 256.0).items():
            m = torch.from_numpy(mask)[None, None]
            acc = [torch.zeros_like(x) for x in std]
            for _ in range(projections):
                v = torch.randn(1, 3, 256, 256, generator=gen_v) * m
                grads = torch.autograd.grad((img * v).sum(), leaves, retain_graph=True)
                for layer in range(n):
                    acc[layer] += (grads[layer][0] * std[layer]) ** 2 / projections
            energy[name] = [a.numpy() for a in acc]
    return energy


def rank(energies: list[dict[str, list[np.ndarray]]], region: str, top: int) -> list[tuple[int, int, float, float]]:
    """(layer, channel, median share of the energy inside `region`, mean energy there), most local first."""
    others = [r for r in (*REGIONS, "rest") if r != region]
    rows = []
    for layer in range(len(energies[0][region])):
        inside = np.stack([e[region][layer] for e in energies])  # [faces,C]
        total = inside + sum(np.stack([e[r][layer] for e in energies]) for r in others)
        share = np.median(inside / np.maximum(total, 1e-12), axis=0)
        rows += [(layer, c, float(share[c]), float(inside[:, c].mean())) for c in range(len(share))]
    rows.sort(key=lambda r: -r[2])
    return rows[:top]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--region", choices=REGIONS, default="eyes", help="where the channel should act (default eyes)")
    p.add_argument("--layers", type=int, default=13, help="style layers searched, from the first (default 13)")
    p.add_argument("--projections", type=int, default=64, help="random projections per region and face")
    p.add_argument("--top", type=int, default=20, help="channels listed (default 20)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from live.assets import AssetStore
    from live.landmarker import FaceTracker
    from live.models.early_exit import load_heads
    from live.models.generator import load_mobilestylegan

    torch.set_grad_enabled(False)
    store = AssetStore()
    gen = load_mobilestylegan(store).requires_grad_(False)
    t0 = time.time()
    std = channel_std(gen, args.layers)
    heads = load_heads()
    tracker = FaceTracker(store.resolve("face_landmarker"), num_faces=1, video=False)
    try:
        energies = []
        for seed in SEARCH_SEEDS:
            energies.append(locality(gen, heads, tracker, seed, std, args.projections))
            log.info("seed %d measured (%.0f s)", seed, time.time() - t0)
    finally:
        tracker.close()
    for layer, channel, share, energy in rank(energies, args.region, args.top):
        log.info("layer %2d channel %3d: %.0f%% of its change inside the %s (energy %.3f)", layer, channel,
                 100 * share, args.region, energy)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
