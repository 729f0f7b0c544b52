"""The calibration's probe harness: generated identities rendered at 256² through the early-exit head, tracked
by MediaPipe and described by dlib. Used by the calibration (live.train.calibrate_encoder), the MediaPipe
surrogate's data (live.train.surrogate) and the identity refinement's tests."""

from __future__ import annotations

import numpy as np
import torch

from live.models.encoder import face_signals
from live.train.regions import region_mask


class Faces:
    """Identities rendered at 256² through the early-exit head, tracked and described."""

    def __init__(self, store, k: int):
        from live.landmarker import FaceTracker
        from live.metrics.face_distance import IdentityMetric
        from live.models.early_exit import load_heads
        from live.models.generator import load_mobilestylegan

        self.gen = load_mobilestylegan(store).requires_grad_(False)
        self.heads, self.k, self.store = load_heads(), k, store
        self.tracker = FaceTracker(store.resolve("face_landmarker"), num_faces=1, video=False)
        self.metric = IdentityMetric(store)

    def close(self) -> None:
        self.tracker.close()

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

    def measure(self, img: torch.Tensor, describe: bool = True) \
            -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """(signals [55], landmarks [478,2] px, dlib descriptor) of one rendered face (None where not found;
        no descriptor unless `describe`: dlib is the slow part)."""
        from live.render import to_uint8

        rgb = to_uint8(img.detach().numpy())
        faces = self.tracker.detect(rgb, 0.0)
        if not faces:
            return None, None, None
        desc = self.metric.descriptor(rgb, upsample=0) if describe else None
        return face_signals(faces[0]), faces[0].landmarks[:, :2] * 256.0, desc

    def region_masks(self, region: str, neutral: torch.Tensor, moved: torch.Tensor, empty: float) -> torch.Tensor:
        """[N,1,256,256] masks of a region on renders [N,3,256,256], each the union over the neutral and the
        moved face's landmarks (`empty` everywhere where MediaPipe finds neither)."""
        masks = []
        for n in range(len(neutral)):
            sets = [lm for img in (neutral[n:n + 1], moved[n:n + 1])
                    if (lm := self.measure(img, describe=False)[1]) is not None]
            masks.append(torch.from_numpy(region_mask(region, sets, 256)) if sets else torch.full((256, 256), empty))
        return torch.stack(masks)[:, None]
