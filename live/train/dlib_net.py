"""dlib's face descriptor ResNet (dlib_face_recognition_resnet_model_v1.dat) read into torch, so the identity
metric of benchmarks/quality.py can be a differentiable training term (live.train.identity_refine).

The .dat holds the network dlib's dnn_face_recognition_ex.cpp defines: a 7x7/2 stem, 14 residual blocks of
two 3x3 convolutions each followed by a per-channel affine (batch norm folded), four of them down-sampling
(the shortcut average-pooled 2x2 and zero-padded where sizes differ, as dlib's add_prev does), a global
average and a 128x256 matrix. Layers are serialised input first; tensors as little-endian float32.
Descriptors equal dlib's own (tests/test_dlib_net.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

CHIP = 150  # dlib's face chip side
MEAN = (122.782, 117.001, 104.298)  # input_rgb_image's per-channel average; the input is (x - mean) / 256


class _Reader:
    """dlib's serialisation: integers as a size/sign byte then little-endian bytes."""

    def __init__(self, data: bytes, pos: int):
        self.data, self.pos = data, pos

    def int(self) -> int:
        head = self.data[self.pos]
        n = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if head & 0x80 else value

    def text(self) -> str:
        n = self.int()
        out = self.data[self.pos:self.pos + n].decode("ascii")
        self.pos += n
        return out

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise ValueError("unknown dlib tensor version")
        count = int(np.prod([self.int() for _ in range(4)]))
        out = np.frombuffer(self.data, "<f4", count, self.pos).copy()
        self.pos += 4 * count
        return out


def read_layers(path: Path) -> list[tuple]:
    """("con", params, filters, rows, cols, stride, padding) / ("affine", params) / ("fc", params, outputs,
    inputs), input first."""
    data = Path(path).read_bytes()
    starts = []
    for name in (b"con_4", b"affine_", b"fc_2"):
        at = data.find(name)
        while at >= 0:
            starts.append(at - 2)  # the name's length prefix: size byte + one length byte
            at = data.find(name, at + len(name))
    layers = []
    for at in sorted(starts):
        r = _Reader(data, at)
        kind = r.text()
        if kind == "con_4":
            params = r.tensor()
            filters, rows, cols, stride, _, padding, _ = (r.int() for _ in range(7))
            layers.append(("con", params, filters, rows, cols, stride, padding))
        elif kind == "affine_":
            layers.append(("affine", r.tensor()))
        else:
            outputs, inputs = r.int(), r.int()
            layers.append(("fc", r.tensor(), outputs, inputs))
    kinds = [x[0] for x in layers]
    if kinds.count("con") != 29 or kinds.count("affine") != 29 or kinds[-1] != "fc":
        raise ValueError(f"{path} is not dlib's face descriptor ResNet (found {len(layers)} layers)")
    return layers


class DlibDescriptor(torch.nn.Module):
    """Face chips [N,3,150,150] RGB in 0..255 -> descriptors [N,128] (dlib's distance: Euclidean)."""

    def __init__(self, path: Path):
        # path: dlib_face_recognition_resnet_model_v1.dat (asset "dlib_face_descriptor").
        super().__init__()
        self.convs, channels = [], 3
        affines = []
        for layer in read_layers(path):
            if layer[0] == "con":
                _, p, n, rows, cols, stride, padding = layer
                size = n * channels * rows * cols
                self.convs.append((torch.from_numpy(p[:size].reshape(n, channels, rows, cols)),
                                   torch.from_numpy(p[size:]), stride, padding))
                channels = n
            elif layer[0] == "affine":
                half = len(layer[1]) // 2
                p = torch.from_numpy(layer[1])
                affines.append((p[:half].view(1, half, 1, 1), p[half:].view(1, half, 1, 1)))
            else:
                self.fc = torch.from_numpy(layer[1].reshape(layer[3], layer[2]))  # [256,128]: out = x @ fc
        self.affines = affines
        self.mean = torch.tensor(MEAN).view(1, 3, 1, 1)

    def _conv(self, i: int, x: torch.Tensor, relu: bool) -> torch.Tensor:
        w, b, stride, padding = self.convs[i]
        gamma, beta = self.affines[i]
        x = F.conv2d(x, w, b, stride=stride, padding=padding) * gamma + beta
        return F.relu(x) if relu else x

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips - self.mean) / 256.0
        x = F.max_pool2d(self._conv(0, x, True), 3, 2)
        for i in range(1, len(self.convs), 2):
            down = self.convs[i][2] == 2
            h = self._conv(i + 1, self._conv(i, x, True), False)
            skip = F.avg_pool2d(x, 2, 2) if down else x
            x = F.relu(_add_padded(h, skip))
        return x.mean((2, 3)) @ self.fc


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum over the larger shape, each input zero-padded at the end of each axis."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, shape[2] - t.shape[3], 0, shape[1] - t.shape[2], 0, shape[0] - t.shape[1]))

    return pad(a) + pad(b)


def chip_grid(rect: tuple[float, float, float, float], angle: float, height: int, width: int,
              size: int = CHIP) -> torch.Tensor:
    """grid_sample grid [1,size,size,2] (align_corners=True) of dlib's face chip: `rect` (left, top, right,
    bottom) and `angle` from dlib.get_face_chip_details, in an image of height x width."""
    left, top, right, bottom = rect
    cx, cy = (left + right) / 2, (top + bottom) / 2
    v = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(v * (bottom - top) / (size - 1), v * (right - left) / (size - 1), indexing="ij")
    c, s = np.cos(angle), np.sin(angle)
    x, y = cx + c * xx - s * yy, cy + s * xx + c * yy
    return torch.stack([x / (width - 1) * 2 - 1, y / (height - 1) * 2 - 1], -1)[None].float()


def face_chips(images: torch.Tensor, grids: list[torch.Tensor]) -> torch.Tensor:
    """images [N,3,H,W] in [-1,1] -> chips [N,3,150,150] in 0..255 (bilinear: for faces near the chip's
    scale; dlib itself blurs before shrinking a large face)."""
    rgb = (images + 1) * 127.5
    return torch.cat([F.grid_sample(rgb[i:i + 1], g, mode="bilinear", align_corners=True)
                      for i, g in enumerate(grids)])
