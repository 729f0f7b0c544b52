"""Pivotal tuning at enrollment (Roich et al. 2021, PTI): the identity's live synthesis network tuned to its portrait.

After inversion the latent is the pivot; the network the live path runs around it (the last two blocks before the
256² exit, TUNE_BLOCKS, and the output head) is tuned so the render at rest matches the aligned portrait (LPIPS at
the view's own 256², L2), and so the render at rest and at an offset keep the portrait's dlib face descriptor (the
identity term, when dlib's models are at hand), while a locality term keeps what offsets do: for a bank of offsets
the encoder produces (random expressions and head turns), the tuned network's change from rest must equal the
un-tuned network's change (L2). The first style layers, which take the per-frame offset, are not touched.

The result is a `Tuning`: float16 deltas of the specialised network's parameters (live.models.specialize), 0.92 MB,
stored in the identity file beside the latent and checked against the same generator hash. Every renderer of the
identity's 256² view (the synthesis stage, the avatar fit, the emotion edit, the warp's probe) applies it through
SynthesisNet; --size 512/1024 render untuned (the block deltas made the full network's picture less like the photo).

Measured (--quality fast, 80 steps, ~1 s a step on a 2-core Zen 4: rest and one offset in one batch, LPIPS in bf16
where native). LPIPS compared at 128² (before 2026-12-07) left the 256² view soft. On the three portraits it suited
least (s9, s10, s12), LPIPS at rest / dlib distance to the photo: 128², no identity term 0.284 / 0.234, 0.239 / 0.206,
0.249 / 0.220; 256² 0.133 / 0.246, 0.142 / 0.212, 0.140 / 0.216; 256² and the identity term at IDENTITY 0.1
0.134 / 0.072, 0.140 / 0.083, 0.142 / 0.055 (at 1.0: LPIPS up to 0.184 on s10); ~+15 s of tuning.
The identity term reads the render at the bank's offset too, at the chip dlib finds on the un-tuned network's render
of that offset (since pti5; the bank's turns move it 0.3-2.8 px, so this changed nothing measurable). Driven through
real clips (benchmarks/quality.py), the dlib distance to the photo, median per clip, s12 x d10 0.465 -> 0.369,
s1 x d10 0.399 -> 0.371, s1 x d18 0.404 -> 0.395, rest LPIPS and motion error unchanged (s12 0.142 -> 0.143,
0.384 -> 0.384). All 7 shared portraits (the term at rest only): benchmarks/results/enroll-tuned-256.json; the
comparison driven: benchmarks/QUALITY.md.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

TUNE_BLOCKS = (3, 4)  # blocks whose convolution weights are tuned: the last two the 256² exit runs
LOCALITY = 10.0  # weight of the locality term
OFFSETS = 8  # offsets in the locality bank
LR = 3e-4
IDENTITY = 0.1  # weight of the identity term: squared dlib descriptor distance (same person below 0.6)
PREFIX = "tune."  # tensor names in identity files


@dataclass(frozen=True)
class Tuning:
    """What pivotal tuning changed: parameter name of FixedIdentitySynthesis -> float16 delta, and the head it was
    tuned with ("learned" or "linear"); a renderer with that head applies all of it, any other the blocks' part."""

    deltas: dict[str, torch.Tensor]
    head: str

    def key(self) -> str:
        h = hashlib.sha256(self.head.encode())
        for name in sorted(self.deltas):
            h.update(name.encode())
            h.update(self.deltas[name].contiguous().numpy().tobytes())
        return h.hexdigest()

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.deltas.values())

    def apply(self, fixed, with_head: bool) -> None:
        """Add the deltas to `fixed` (a FixedIdentitySynthesis of this identity), the head's only if `with_head`."""
        params = dict(fixed.named_parameters()) | dict(fixed.named_buffers())
        with torch.no_grad():
            for name, delta in self.deltas.items():
                if _is_head(name) and not with_head:
                    continue
                target = params.get(name)
                if target is None or target.shape != delta.shape:
                    continue  # a part this renderer does not run (e.g. block 4's weights past a 128² exit)
                target.add_(delta.to(target.dtype))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {PREFIX + name: t for name, t in self.deltas.items()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], head: str) -> Tuning | None:
        deltas = {k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)}
        return cls(deltas, head) if deltas else None


def check_tuning(tuning: Tuning, max_abs: float) -> str | None:
    """What is wrong with a tuning read from a file (None: nothing): unknown parameters, non-finite or absurd values."""
    if tuning.head not in ("learned", "linear"):
        return f"names an unknown head {tuning.head!r}"
    for name, delta in tuning.deltas.items():
        known = _is_head(name) or name.split(".")[0] in ("conv_weights", "dw_weights")
        if not known:
            return f"changes an unknown parameter {name!r}"
        if not torch.isfinite(delta).all() or float(delta.abs().max()) > max_abs:
            return f"has values that are not finite or beyond +-{max_abs:g} in {name!r}"
    return None


def _is_head(name: str) -> bool:
    return name.startswith(("learned_head.", "img_weight", "img_bias"))


def tuned_parameters(fixed) -> dict[str, torch.nn.Parameter]:
    """The parameters of `fixed` pivotal tuning moves: TUNE_BLOCKS' convolution weights and the head."""
    names = {f"{kind}.{1 + 2 * block + j}" for block in TUNE_BLOCKS for j in (0, 1)
             for kind in ("conv_weights", "dw_weights")}
    out = {}
    for name, p in list(fixed.named_parameters()) + list(fixed.named_buffers()):
        if (name in names or _is_head(name)) and p.numel() > 0:
            out[name] = p
    return out


def offset_bank(encoder, count: int = OFFSETS, seed: int = 0) -> list[torch.Tensor]:
    """[1,K,512] offsets the linear encoder makes for random expressions and head turns (the locality term's)."""
    rs = np.random.RandomState(seed)
    return [torch.from_numpy(encoder(random_change(rs, 4, 0.8))) for _ in range(count)]  # turns within +-24°


def random_change(rs: np.random.RandomState, most: int, turn: float) -> np.ndarray:
    """[55] a random change of the driving signals: 1..`most` blendshapes moved by up to 0.9, yaw and pitch by up to
    `turn` (x POSE_SCALE degrees)."""
    delta = np.zeros(55, np.float32)
    moving = rs.choice(52, rs.randint(1, most + 1), replace=False)
    delta[moving] = rs.uniform(0.0, 0.9, len(moving))
    delta[52:54] = rs.uniform(-turn, turn, 2)
    return delta


@dataclass(frozen=True)
class IdentityTerm:
    """The tuning's identity term: dlib's descriptor (live.train.dlib_net, differentiable) of the portrait's face
    chip against that of the face chip cut from the render, where dlib finds the face on it (`follow`)."""

    descriptor: torch.nn.Module
    grid: torch.Tensor  # [1,150,150,2] the chip on the 256² view at rest (live.train.dlib_net.chip_grid)
    target: torch.Tensor  # [1,128] the portrait's descriptor
    metric: object  # live.metrics.face_distance.IdentityMetric: finds the chip on a render

    @classmethod
    def of(cls, descriptor: torch.nn.Module, metric, target: torch.Tensor) -> IdentityTerm | None:
        """For `target` [1,3,H,W] in [-1,1]; metric: live.metrics.face_distance.IdentityMetric (finds the chip).
        None where dlib finds no face on the portrait."""
        from live.enroll import to_image
        from live.train.dlib_net import chip_grid, face_chips

        box = metric.chip_box(to_image(target))
        if box is None:
            return None
        grid = chip_grid(*box, target.shape[2], target.shape[3])
        with torch.no_grad():
            return cls(descriptor, grid, descriptor(face_chips(target, [grid])), metric)

    def follow(self, renders: list[torch.Tensor]) -> list[torch.Tensor]:
        """The chip on each render ([1,3,H,W]: the un-tuned network at an offset) where dlib finds the face there,
        else the rest chip: a turned or raised head is read where it is, not pulled back to the front."""
        from live.enroll import to_image
        from live.train.dlib_net import chip_grid

        grids = []
        for render in renders:
            box = self.metric.chip_box(to_image(render))
            grids.append(self.grid if box is None else chip_grid(*box, render.shape[2], render.shape[3]))
        return grids

    def __call__(self, images: torch.Tensor, grids: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Squared descriptor distance of `images` [N,3,H,W] to the portrait's, summed; each image read at its grid
        in `grids` (default: the chip where the face is at rest)."""
        from live.train.dlib_net import face_chips

        chips = face_chips(images, grids or [self.grid] * len(images))
        return (self.descriptor(chips) - self.target).square().sum()


def pivotal_tuning(net, target: torch.Tensor, lpips, encoder, steps: int,
                   progress: Callable[[int, float], None] | None = None, lr: float = LR,
                   identity: IdentityTerm | None = None) -> Tuning:
    """Tune `net` (a SynthesisNet at 256², the identity's latent folded in, K = the encoder's) to `target`
    ([1,3,256,256] in [-1,1], the aligned portrait); returns the deltas (net itself is left as it was).
    progress(step, lpips) after each step; identity: the identity term, or None to tune without it."""
    from live.backends.torch_backend import native_bf16
    from live.models.specialize import FixedIdentitySynthesis

    fixed: FixedIdentitySynthesis = net.fixed
    params = tuned_parameters(fixed)
    start = {name: p.detach().clone() for name, p in params.items()}
    k = fixed.k
    zero = torch.zeros(1, k, 512)
    bank = offset_bank(encoder)
    with torch.no_grad():
        rest = net(zero)
        renders = [net(o) for o in bank]
        moves = [r - rest for r in renders]
    # each offset's render is read at the chip dlib finds on the un-tuned network's render of it
    chips = identity.follow(renders) if identity is not None else []
    t_feats = [f.detach() for f in lpips.features(target)]
    for p in params.values():
        p.requires_grad_(True)
    opt = torch.optim.Adam(list(params.values()), lr=lr)
    bf16 = native_bf16()
    t0 = time.perf_counter()
    try:
        with torch.enable_grad(), torch.inference_mode(False):
            for step in range(steps):
                j = step % len(bank)
                both = net(torch.cat([zero, bank[j]]))  # at rest and at an offset, one batch
                image = both[:1]
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # VGG: 2x faster where native
                    perceptual = lpips.distance(lpips.features(image), t_feats).float().sum()
                locality = F.mse_loss(both[1:] - image, moves[j])
                loss = perceptual + F.mse_loss(image, target) + LOCALITY * locality
                if identity is not None:  # at rest and at the offset: expressions and turns stay this person
                    loss = loss + IDENTITY * identity(both, [identity.grid, chips[j]])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if progress is not None:
                    progress(step + 1, float(perceptual.detach()))
    finally:
        for p in params.values():
            p.requires_grad_(False)
    with torch.no_grad():
        deltas = {name: (p - start[name]).half() for name, p in params.items()}
        for name, p in params.items():  # net back as it was
            p.copy_(start[name])
    tuning = Tuning(deltas, "learned" if net.learned else "linear")
    log.info("pivotal tuning: %d steps in %.0f s, %.2f MB of deltas", steps, time.perf_counter() - t0,
             tuning.nbytes() / 1e6)
    return tuning
