"""Image-space steps after synthesis: one function each, on the host (numpy, OpenCV: the reference) or on the
device the synthesis left its output on (torch: CUDA on a GPU machine, the same code on the CPU in tests).

Today the step is the avatar's in-plane roll; the geometric warp and the frame composition come next, each
written twice like `roll`: `roll_host` is the reference, `roll_device` is checked against it (tests/test_gpu.py).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from live.gpu import to_chw_float, to_image_uint8, warp_affine

MIN_ROLL_DEG = 0.05  # a smaller roll leaves the image untouched (it would only blur it)


def roll_matrix(size: int, degrees: float) -> np.ndarray:
    """[2,3] source pixel -> output pixel: a counter-clockwise rotation about the centre of a size² image."""
    return cv2.getRotationMatrix2D((size / 2 - 0.5, size / 2 - 0.5), degrees, 1.0)


def roll_host(image: np.ndarray, degrees: float) -> np.ndarray:
    """[S,S,3] uint8 turned `degrees` counter-clockwise about its centre, borders reflected (OpenCV)."""
    if abs(degrees) < MIN_ROLL_DEG:
        return image
    h, w = image.shape[:2]
    return cv2.warpAffine(image, roll_matrix(w, degrees), (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def roll_device(image: torch.Tensor, degrees: float) -> torch.Tensor:
    """roll_host on a [S,S,3] uint8 tensor, where it is (bilinear, borders reflected)."""
    if abs(degrees) < MIN_ROLL_DEG:
        return image
    size = image.shape[1]
    return to_image_uint8(warp_affine(to_chw_float(image), roll_matrix(size, degrees), size))


def roll(image: np.ndarray | torch.Tensor, degrees: float) -> np.ndarray | torch.Tensor:
    """The roll where the image is: a numpy image on the host, a tensor on its device."""
    return roll_device(image, degrees) if isinstance(image, torch.Tensor) else roll_host(image, degrees)
