"""Refine an expression direction for identity: through the generator, a MediaPipe surrogate (what the
tracker reads) and dlib's face descriptor in torch (what the identity metric reads), keep the direction's
reach per unit coefficient and lower the descriptor's change.

For coefficients a in [0.4, 1.2] on the training identities (REFINE_SEEDS, never the calibration faces):
    loss = (reach(a) - a * target)² + cross * (other readouts' change)² + lam * |desc(a) - desc(0)|²
           + outside * (image change outside the expression's region)²
where target is BOOST x the start direction's own reach per unit (the surrogate's mean over the training faces):
asked for a little more than it had, the direction keeps opening while the descriptor term pulls its
identity change down (with lam 5 instead of 2 the jaw slid down its curve instead: less open, no cheaper).
The chip each descriptor reads is placed by dlib on the current render (not differentiated), so the
descriptor is dlib's as the metric computes it. The direction stays on the first K style layers (coarse
structure), one direction for all faces: it cannot learn per-face pixel patterns that fool the descriptor.
It can still buy descriptor distance with changes that are not the expression (without the outside term
the refined jaw and smile darkened the hair), so the image outside the region (the region mask of
calibrate_encoder's distillation, from the neutral and the start's landmarks) is held to the neutral face.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger("live.train.identity_refine")

# expression name -> the surrogate outputs (live.train.surrogate.OUT) that make its asked signal
READS = {"jaw": (0,), "smile": (1, 2), "blink": (3, 4), "brows": (5,)}
LAMBDA = 2.0  # weight of the squared descriptor change (5 traded reach for identity along a worse curve)
BOOST = 1.3  # reach asked per unit, relative to the start direction's
CROSS = 2.0  # weight of the other readouts' squared change
OUTSIDE = 20.0  # weight of the mean squared image change outside the region ([-1,1] pixels)
STEPS = 200


class Refiner:
    """Renders the training identities once; then refines any number of directions."""

    def __init__(self, faces, surrogate, descriptor, seeds: range, batch: int = 4):
        # faces: live.train.generated_faces.GeneratedFaces; surrogate: live.train.surrogate.Surrogate; descriptor:
        # live.train.dlib_net.DlibDescriptor; seeds: training identities; batch: faces per step.
        from live.inversion import Renderer

        self.faces, self.surrogate, self.descriptor, self.batch = faces, surrogate, descriptor, batch
        self.render = Renderer(faces.gen, faces.heads[256])
        self.ws = torch.cat([faces.w(s) for s in seeds])
        self.neutral = self.renders(torch.zeros(faces.k, 512))
        with torch.no_grad():
            self.read0 = self.read(self.neutral)
        grids = self.grids(self.neutral)
        keep = [i for i, g in enumerate(grids) if g is not None]
        if len(keep) < batch:
            raise RuntimeError(f"dlib found a face in only {len(keep)} of {len(self.ws)} training identities")
        self.ws, self.neutral, self.read0 = self.ws[keep], self.neutral[keep], self.read0[keep]
        with torch.no_grad():
            self.desc0 = self.describe(self.neutral, [grids[i] for i in keep])

    def read(self, img: torch.Tensor) -> torch.Tensor:
        return self.surrogate(F.avg_pool2d(img, 2))

    def grids(self, img: torch.Tensor) -> list:
        from live.render import to_uint8
        from live.train.dlib_net import chip_grid

        out = []
        for i in range(len(img)):
            box = self.faces.metric.chip_box(to_uint8(img[i:i + 1].detach().numpy()))
            out.append(chip_grid(*box, img.shape[2], img.shape[3]) if box else None)
        return out

    def describe(self, img: torch.Tensor, grids: list) -> torch.Tensor:
        from live.train.dlib_net import face_chips

        return self.descriptor(face_chips(img, grids))

    def renders(self, d: torch.Tensor) -> torch.Tensor:
        """The training faces moved by offset d [K,512], one at a time (no gradient)."""
        with torch.no_grad():
            return torch.cat([self.render(self.faces.styles(self.ws[i:i + 1], d)) for i in range(len(self.ws))])

    def reach(self, d: torch.Tensor, own: list[int]) -> float:
        """Mean surrogate change of the readouts `own` at offset d over the training faces."""
        with torch.no_grad():
            return float((self.read(self.renders(d)) - self.read0)[:, own].mean())

    def refine(self, name: str, start: torch.Tensor, region: str, steps: int = STEPS, lam: float = LAMBDA,
               cross: float = CROSS, outside: float = OUTSIDE, lr: float = 0.01) -> tuple[torch.Tensor, dict]:
        """start [K,512] -> (refined direction [K,512], report); region: calibrate_encoder's region name."""
        own = list(READS[name])
        # the region on the neutral face and at the largest coefficient used (no face found: nothing held)
        rest = 1 - self.faces.region_masks(region, self.neutral, self.renders(1.2 * start), empty=1.0)
        others = [i for i in range(self.read0.shape[1]) if i not in own]
        gen = torch.Generator().manual_seed(0)
        target = BOOST * self.reach(start, own)
        d = start.clone().requires_grad_(True)
        opt = torch.optim.Adam([d], lr=lr)
        t0, trace = time.time(), []
        log.info("  refine %s: target reach %.3f per unit (%.1f x the start's), %d steps", name, target, BOOST, steps)
        with torch.enable_grad():
            for step in range(steps):
                idx = torch.randperm(len(self.ws), generator=gen)[:self.batch]
                a = 0.4 + 0.8 * torch.rand(self.batch, generator=gen)
                img = self.render(self.faces.styles(self.ws[idx], a[:, None, None] * d))
                r = self.read(img) - self.read0[idx]
                grids = self.grids(img)
                ok = [i for i, g in enumerate(grids) if g is not None]
                reach = r[:, own].mean(1)
                change = ((img - self.neutral[idx]).square() * rest[idx]).sum() / (3 * rest[idx].sum())
                loss = (reach - a * target).square().mean() + cross * r[:, others].square().mean() + outside * change
                if ok:  # dlib lost every face of this batch (rare): that step has no identity term
                    dist = (self.describe(img[ok], [grids[i] for i in ok]) - self.desc0[idx[ok]]).norm(dim=1)
                    loss = loss + lam * dist.square().mean()
                    trace.append([float((reach.detach() / a).mean()), float((dist.detach() / a[ok]).mean()),
                                  float(change.detach())])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step % 25 == 0 or step == steps - 1:
                    recent = np.mean(trace[-25:], axis=0)
                    log.info("  refine %s: step %d/%d, reach %.3f and identity %.3f per unit, outside change %.4f "
                             "(last 25 steps), %.0f s", name, step + 1, steps, *recent, time.time() - t0)
        d = d.detach()
        # rescaled to the start's reach per unit, so the measured grid covers the same range
        scale = float(np.clip(target / BOOST / max(self.reach(d, own), 1e-6), 1.0, 2.0))
        first, last = np.mean(trace[:25], axis=0), np.mean(trace[-25:], axis=0)
        report = {"rescaled": round(scale, 3), "steps": steps, "lambda": lam, "cross": cross, "outside": outside,
                  "region": region, "target": round(target, 4),
                  **{f"{k}_25": {"reach": round(float(v[0]), 4), "identity": round(float(v[1]), 4),
                                 "outside_change": round(float(v[2]), 5)}
                     for k, v in (("first", first), ("last", last))},
                  "seconds": round(time.time() - t0, 1)}
        return scale * d, report
