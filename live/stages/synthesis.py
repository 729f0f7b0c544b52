"""Synthesis stage: the fixed identity plus this frame's offset on the first K style layers -> a face, then the
image-space steps (live.image_steps: the roll) where the face is.

The backend is any `Backend` with input "offset" [1,K,512] and output "image" [1,3,S,S]; the stage
never asks which kind it is. Frames without an offset (no encoder yet, or no face) render the identity.
On the GPU path (a backend that leaves its output on the device, `--device cuda`) the stage works on its own
CUDA stream, the face stays on the device through the image steps, and the frame carries it with the event
recorded after that work (`Frame.ready`); the sink downloads it once (live.gpu.OnHost, in the Pipeline).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from live.backends.base import Backend
from live.frames import Frame
from live.gpu import StageStream, to_image_uint8
from live.image_steps import roll
from live.render import to_uint8

log = logging.getLogger(__name__)


class SynthesisStage:
    def __init__(self, backend: Backend, warmup_runs: int = 2, device: str = "cpu"):
        # backend: runs offset -> image; warmup_runs: runs in start() (compilation, caches) before frames;
        # device: where the stage works ("cuda": on its own CUDA stream; the output stays on the GPU).
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

    def start(self) -> None:
        for _ in range(self.warmup_runs):
            self.backend.run({"offset": self._zeros})

    def process(self, frame: Frame) -> Frame:
        offset = self._zeros if frame.offset is None else frame.offset.astype(np.float32, copy=False)
        if offset.shape != self._zeros.shape:
            raise ValueError(f"offset has shape {list(offset.shape)}, the synthesis takes {list(self._zeros.shape)}")
        image, event = self.stream.run(self._render, offset, frame.avatar_roll)
        return frame.replace(output=image, ready=event)

    def _render(self, offset: np.ndarray, avatar_roll: float) -> np.ndarray | torch.Tensor:
        image = self.backend.run({"offset": offset})["image"]  # [1,3,S,S] in [-1,1], numpy or device tensor
        image = to_image_uint8(image) if isinstance(image, torch.Tensor) else to_uint8(image)
        return roll(image, avatar_roll)  # [S,S,3] uint8 where the backend left it

    def close(self) -> None:
        pass
