"""The GPU path: per-stage CUDA streams ordered by events, pinned host buffers, and image operations in
torch that run wherever their tensors are (CUDA on a GPU machine, the CPU everywhere else).

On a CUDA machine a stage that works on the GPU runs its work on its own stream (`StageStream.run`):
the stream first waits for the event the previous stage recorded on the frame, then the stage records
its own event, so hand-offs are ordered without synchronising the host. Frames keep their pixels on the
GPU from upload (`Uploader`, through a pinned staging buffer allocated once per shape) to output
(`to_image_uint8`, the image steps of live.image_steps); the sink downloads once (`OnHost`, which the
Pipeline puts before its last stage). On CPU machines every piece degrades to plain
calls: no streams, no events, no pinned memory, the same results.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def is_cuda(device: torch.device | str) -> bool:
    return torch.device(device).type == "cuda"


class StageStream:
    """A stage's own CUDA stream (None on CPU) and the event bookkeeping between stages."""

    def __init__(self, device: torch.device | str):
        # device: where the stage works; CUDA gets a dedicated stream, the CPU nothing.
        self.device = torch.device(device)
        self.stream = torch.cuda.Stream(device=self.device) if is_cuda(self.device) else None

    def run(self, fn, *args, wait_for=None):
        """Call fn(*args) on this stage's stream after `wait_for` (an event or None).

        Returns (result, event): the event is recorded after fn's work was queued (None on CPU).
        """
        if self.stream is None:
            return fn(*args), None
        if wait_for is not None:
            self.stream.wait_event(wait_for)
        with torch.cuda.stream(self.stream):
            out = fn(*args)
            event = torch.cuda.Event()
            event.record(self.stream)
        return out, event


class Uploader:
    """Host image -> device tensor through a pinned staging buffer allocated once per shape."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self._pinned: dict[tuple, torch.Tensor] = {}

    def __call__(self, array: np.ndarray) -> torch.Tensor:
        if not is_cuda(self.device):
            return torch.from_numpy(np.ascontiguousarray(array))
        buf = self._pinned.get(array.shape)
        if buf is None:
            buf = torch.empty(array.shape, dtype=torch.from_numpy(array[:0]).dtype, pin_memory=True)
            self._pinned[array.shape] = buf
        buf.numpy()[...] = array
        return buf.to(self.device, non_blocking=True)


class Downloader:
    """Device tensor -> host numpy through a pinned buffer (one per shape); waits for the copy."""

    def __init__(self):
        self._pinned: dict[tuple, torch.Tensor] = {}

    def __call__(self, tensor: torch.Tensor, event=None) -> np.ndarray:
        if tensor.device.type != "cuda":
            return tensor.numpy()
        if event is not None:
            event.synchronize()
        buf = self._pinned.get(tuple(tensor.shape))
        if buf is None:
            buf = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            self._pinned[tuple(tensor.shape)] = buf
        buf.copy_(tensor, non_blocking=True)
        torch.cuda.current_stream(tensor.device).synchronize()
        return buf.numpy().copy()


class OnHost:
    """The sink's end of the GPU path: a frame whose output is a device tensor gets it downloaded once, after the
    event the synthesis recorded on it (through a pinned buffer); a frame already on the host passes as it is."""

    def __init__(self):
        self.download = Downloader()

    def __call__(self, frame):
        if not isinstance(frame.output, torch.Tensor):
            return frame
        return frame.replace(output=self.download(frame.output, frame.ready), ready=None)


def to_chw_float(image: torch.Tensor) -> torch.Tensor:
    """[H,W,3] uint8 -> [1,3,H,W] float32 in [-1,1]."""
    return image.permute(2, 0, 1)[None].float().div_(127.5).sub_(1.0)


def to_image_uint8(image: torch.Tensor) -> torch.Tensor:
    """[1,3,H,W] float in [-1,1] -> [H,W,3] uint8 (on the same device)."""
    return ((image[0].float().clamp(-1, 1) + 1.0) * 127.5 + 0.5).to(torch.uint8).permute(1, 2, 0).contiguous()


def swap_rb(image: torch.Tensor) -> torch.Tensor:
    """[H,W,3] BGR <-> RGB."""
    return image.flip(-1)


def resize_area(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[1,C,H,W] float -> [1,C,h,w] with antialiasing (area-like when shrinking)."""
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


def warp_affine(image: torch.Tensor, matrix: np.ndarray, size: int) -> torch.Tensor:
    """cv2.warpAffine on the device: [1,C,H,W] float, `matrix` [2,3] (source pixel -> output pixel) ->
    [1,C,size,size], bilinear, border reflected (as live.align does on the CPU)."""
    _, _, h, w = image.shape
    inv = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]  # output pixel -> source pixel
    # Output pixel centres in normalised coordinates -> source normalised coordinates (align_corners=False).
    to_px = np.array([[size / 2, 0, size / 2 - 0.5], [0, size / 2, size / 2 - 0.5], [0, 0, 1]])
    to_norm = np.array([[2 / w, 0, 1 / w - 1], [0, 2 / h, 1 / h - 1], [0, 0, 1]])
    theta = (to_norm @ np.vstack([inv, [0, 0, 1]]) @ to_px)[:2]
    grid = F.affine_grid(torch.as_tensor(theta, dtype=image.dtype, device=image.device)[None],
                         [1, image.shape[1], size, size], align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
