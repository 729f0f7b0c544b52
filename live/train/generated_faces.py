"""Generated identities rendered at 256² through the early-exit head and read by live.probe.FaceReader (MediaPipe,
dlib). Used by the calibration (live.train.calibrate_encoder), the MediaPipe surrogate's data
(live.train.surrogate) and the identity refinement's tests."""

from __future__ import annotations

import torch

from live.probe import FaceReader, Reading
from live.render import to_uint8
from live.train.regions import region_mask


class GeneratedFaces:
    """Identities rendered at 256² through the early-exit head, tracked and described."""

    def __init__(self, store, k: int):
        from live.models.early_exit import load_heads
        from live.models.generator import load_mobilestylegan

        self.gen = load_mobilestylegan(store).requires_grad_(False)
        self.heads, self.k, self.store = load_heads(), k, store
        self.reader = FaceReader(store)
        self.metric = self.reader.metric  # dlib: distances, and the chip boxes the identity refinement crops

    def close(self) -> None:
        self.reader.close()

    def w(self, seed: int) -> torch.Tensor:
        from live.models.generator import z_from_seed
        from live.train.data import TRUNCATION

        return self.gen.mapping(z_from_seed(seed), TRUNCATION)

    def styles(self, ws: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        st = ws[:, None].expand(len(ws), self.gen.num_layers, -1).clone()
        st[:, :self.k] = st[:, :self.k] + offset
        return st

    def render(self, ws: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        from live.models.early_exit import render_styles

        return render_styles(self.gen, self.styles(ws, offset), 256, self.heads)

    def read(self, img: torch.Tensor, describe: bool = True) -> Reading:
        """What MediaPipe and dlib read of one render [1,3,256,256] (all None where MediaPipe finds no face; no
        descriptor unless `describe`: dlib is the slow part)."""
        rgb = to_uint8(img.detach().numpy())
        signals, landmarks = self.reader.track(rgb)
        if signals is None:
            return Reading(None, None, None)
        return Reading(signals, landmarks, self.reader.describe(rgb) if describe else None)

    def region_masks(self, region: str, neutral: torch.Tensor, moved: torch.Tensor, empty: float) -> torch.Tensor:
        """[N,1,256,256] masks of a region on renders [N,3,256,256], each the union over the neutral and the
        moved face's landmarks (`empty` everywhere where MediaPipe finds neither)."""
        masks = []
        for n in range(len(neutral)):
            sets = [lm for img in (neutral[n:n + 1], moved[n:n + 1])
                    if (lm := self.read(img, describe=False).landmarks) is not None]
            masks.append(torch.from_numpy(region_mask(region, sets, 256)) if sets else torch.full((256, 256), empty))
        return torch.stack(masks)[:, None]
