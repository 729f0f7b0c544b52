"""GAN inversion: the W+ styles that make the generator draw a given aligned face.

Three phases, as in the StyleGAN2 projector and the W+ encoders after it, coarse to exact:
1. W: one w for every layer, from the best of a few generated candidates, so the face is on the
   generator's manifold (editable: driving offsets behave as on generated faces);
2. W+: a per-layer offset on the layers the 256² early-exit output reads, rendered through that head
   (~0.1 s a step: the expensive 512/1024 blocks are skipped), pulled towards the phase-1 w by a
   regulariser so the latent stays near W;
3. W+ on all 23 layers through the full generator (1024² area-downsampled, bf16 where the CPU has it,
   ~1.4 s a step): the head is an approximation (LPIPS ~0.33 from the true output), so the last steps
   fit what the generator really draws.
Loss: LPIPS(VGG16) + pixel MSE, at 256² (phases 1-2 may compare smaller, `lpips_size`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from live.models.early_exit import EXIT_BLOCK
from live.models.generator import MobileStyleGAN, z_from_seed
from live.models.lpips import LPIPS
from live.backends.torch_backend import native_bf16
from live.models.mobilestylegan import bands_to_image

log = logging.getLogger(__name__)

SIZE = 256  # the side inversion works at (early-exit head)
PLUS_LAYERS = 1 + 3 * (EXIT_BLOCK[SIZE] + 1)  # style layers the 256² output reads (16)


@dataclass(frozen=True)
class InversionSettings:
    steps_w: int  # phase 1 (one w)
    steps_plus: int  # phase 2 (W+, through the 256² head)
    lpips_size: int  # side LPIPS compares at in phases 1-2 (smaller is faster)
    steps_full: int = 0  # phase 3 (W+ on all layers, through the full generator: exact, ~1.5 s a step)
    candidates: int = 16  # generated faces tried as the starting point
    lr: float = 0.08
    lr_full: float = 0.03  # phase 3 starts close: smaller steps
    mse_weight: float = 1.0
    plus_reg: float = 5e-4  # weight of the W+ -> W regulariser (mean squared layer deviation)

    @property
    def steps(self) -> int:
        return self.steps_w + self.steps_plus + self.steps_full


QUALITY = {
    "fast": InversionSettings(steps_w=80, steps_plus=120, lpips_size=128, steps_full=70),
    "best": InversionSettings(steps_w=150, steps_plus=250, lpips_size=192, steps_full=200),
}


class Renderer:
    """styles [1,23,512] -> [1,3,256,256] through the early-exit head, differentiable in the styles."""

    def __init__(self, generator: MobileStyleGAN, head: tuple[torch.Tensor, torch.Tensor]):
        self.synthesis = generator.synthesis_net
        self.weight, self.bias = head

    def features(self, styles: torch.Tensor) -> torch.Tensor:
        """Features of the exit block for styles [N,23,512] (only the first PLUS_LAYERS are read)."""
        s = self.synthesis
        mods = [s.modulation(layer, styles[:, layer]) for layer in range(PLUS_LAYERS)]
        mods += [None] * (s.num_layers - PLUS_LAYERS)  # never read before the exit
        return s.render(mods, styles.shape[0], features_of=EXIT_BLOCK[SIZE])

    @staticmethod
    def head(feats: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Exit-block features -> [N,3,256,256] through a 1x1 head (weight [12,C,1,1], bias [1,12,1,1])."""
        return bands_to_image(F.conv2d(feats, weight) + bias)

    def __call__(self, styles: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(styles), self.weight, self.bias)


@dataclass
class InversionResult:
    styles: torch.Tensor  # [1,23,512] W+
    lpips: float  # at lpips_size, through the early-exit head, at the last step
    mse: float
    steps: int


def _lr(step: int, total: int, base: float) -> float:
    """Short warm-up and cosine ramp-down (the StyleGAN2 projector's schedule)."""
    t = step / max(1, total)
    return base * min(1.0, t / 0.05) * (0.5 - 0.5 * math.cos(math.pi * min(1.0, (1.0 - t) / 0.25)))


class Inverter:
    def __init__(self, generator: MobileStyleGAN, lpips: LPIPS, head: tuple[torch.Tensor, torch.Tensor]):
        # generator: the default generator; lpips: the perceptual loss; head: 256² early-exit (weight, bias).
        self.gen = generator.requires_grad_(False)
        self.lpips = lpips
        self.render = Renderer(generator, head)

    def _prep(self, image: torch.Tensor, size: int) -> torch.Tensor:
        return image if image.shape[-1] == size else F.interpolate(image, size=(size, size), mode="area")

    @torch.no_grad()
    def start(self, target: torch.Tensor, settings: InversionSettings, seed: int = 0) -> torch.Tensor:
        """w [1,512] to start from: the mean face or the closest of `candidates` generated faces."""
        gen = self.gen
        ws = [gen.w_avg[None]]
        if settings.candidates > 1:
            z = z_from_seed(seed, settings.candidates - 1)
            ws.append(gen.mapping(z, truncation=0.6))
        ws = torch.cat(ws)
        t_small = self.lpips.features(self._prep(target, 128))
        scores = []
        for w in ws:
            img = self.render(w[None, None].expand(1, gen.num_layers, -1))
            scores.append(float(self.lpips.distance(self.lpips.features(self._prep(img, 128)), t_small)))
        best = int(torch.tensor(scores).argmin())
        log.debug("start: candidate %d of %d (LPIPS@128 %.3f; mean face %.3f)", best, len(ws), scores[best],
                  scores[0])
        return ws[best: best + 1].clone()

    def render_full(self, styles: torch.Tensor, exact: bool = False) -> torch.Tensor:
        """The generator's own output (1024², every layer) area-downsampled to 256²; bf16 where native
        unless `exact`."""
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=native_bf16() and not exact):
            img = self.gen.synthesis(styles)
        return F.avg_pool2d(img.float(), img.shape[-1] // SIZE)

    def invert(self, target: torch.Tensor, settings: InversionSettings,
               progress: Callable[[int, float], None] | None = None) -> InversionResult:
        """target: [1,3,256,256] in [-1,1] (an FFHQ-aligned crop). progress(step, lpips) after each step."""
        if target.shape != (1, 3, SIZE, SIZE):
            raise ValueError(f"inversion wants a [1,3,{SIZE},{SIZE}] target, got {list(target.shape)}")
        n = self.gen.num_layers
        w = self.start(target, settings).requires_grad_(True)
        delta = torch.zeros(1, n, w.shape[-1], requires_grad=True)
        phases = (  # (steps, parameter, renderer, LPIPS side, learning rate)
            (settings.steps_w, w, self.render, settings.lpips_size, settings.lr),
            (settings.steps_plus, delta, self.render, settings.lpips_size, settings.lr),
            (settings.steps_full, delta, self.render_full, SIZE, settings.lr_full),
        )
        done, lp, mse = 0, float("nan"), float("nan")
        for steps, param, render, lpips_size, lr in phases:
            if steps <= 0:
                continue
            t_feats = [f.detach() for f in self.lpips.features(self._prep(target, lpips_size))]
            opt = torch.optim.Adam([param], lr=lr)
            for step in range(steps):
                for group in opt.param_groups:
                    group["lr"] = _lr(step, steps, lr)
                styles = w[:, None].expand(1, n, -1) + delta
                img = render(styles)
                loss_lp = self.lpips.distance(self.lpips.features(self._prep(img, lpips_size)), t_feats).sum()
                loss_mse = F.mse_loss(img, target)
                loss = loss_lp + settings.mse_weight * loss_mse
                if param is delta:
                    loss = loss + settings.plus_reg * delta.pow(2).sum(dim=-1).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                lp, mse = float(loss_lp.detach()), float(loss_mse.detach())
                done += 1
                if progress is not None:
                    progress(done, lp)
            w.requires_grad_(False)
        with torch.no_grad():
            styles = (w[:, None].expand(1, n, -1) + delta).detach().clone()
        return InversionResult(styles=styles, lpips=lp, mse=mse, steps=done)
