"""Synthesis stage: the fixed identity plus this frame's offset on the first K style layers -> a face.

The backend is any `Backend` with input "offset" [1,K,512] and output "image" [1,3,S,S]; the stage
never asks which kind it is. Frames without an offset (no encoder yet, or no face) render the identity.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import torch

from live.backends.base import Backend
from live.frames import Frame
from live.gpu import Downloader, StageStream, to_image_uint8
from live.render import to_uint8

log = logging.getLogger(__name__)


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """In-plane rotation (counter-clockwise) about the image centre, borders reflected ([S,S,3] uint8)."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), degrees, 1.0)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


class SynthesisStage:
    def __init__(self, backend: Backend, warmup_runs: int = 2, device: str = "cpu"):
        # backend: runs offset -> image; warmup_runs: runs in start() (compilation, caches) before frames;
        # device: where the backend leaves its output ("cuda": the stage works on its own CUDA stream,
        # converts to uint8 on the GPU and downloads once through a pinned buffer).
        spec = backend.inputs().get("offset")
        if spec is None or len(spec.shape) != 3 or "image" not in backend.outputs():
            raise ValueError(f"backend {backend.name} must take 'offset' [1,K,512] and give 'image'")
        self.backend = backend
        self.name = f"synthesis/{backend.name}"
        self.k = spec.shape[1]
        self.size = backend.outputs()["image"].shape[-1]
        self.warmup_runs = warmup_runs
        self._zeros = np.zeros(spec.shape, dtype=np.float32)
        self.stream = StageStream(device)
        self.download = Downloader()

    def start(self) -> None:
        for _ in range(self.warmup_runs):
            self.backend.run({"offset": self._zeros})

    def process(self, frame: Frame) -> Frame:
        offset = self._zeros if frame.offset is None else frame.offset.astype(np.float32, copy=False)
        if offset.shape != self._zeros.shape:
            raise ValueError(f"offset has shape {list(offset.shape)}, the synthesis takes {list(self._zeros.shape)}")
        image, event = self.stream.run(self._render, offset)
        image = self.download(image, event) if isinstance(image, torch.Tensor) else image
        return frame.replace(output=rotate(image, frame.avatar_roll) if abs(frame.avatar_roll) >= 0.05 else image)

    def _render(self, offset: np.ndarray):
        image = self.backend.run({"offset": offset})["image"]  # [1,3,S,S] in [-1,1], numpy or device tensor
        return to_image_uint8(image) if isinstance(image, torch.Tensor) else to_uint8(image)

    def close(self) -> None:
        pass
