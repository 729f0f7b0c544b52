"""StyleGAN2 (Karras et al., 2020) in plain torch, for users who bring an official checkpoint.

Loads the widely used PyTorch `g_ema` state-dict layout (rosinality/stylegan2-pytorch): any resolution
and channel multiplier, read from the keys. No custom CUDA extension and nothing compiled at import:
the fused leaky ReLU and upfirdn2d are written with plain torch ops (the reference implementations).
W+ has `num_layers = 2*log2(size) - 2` style layers (18 at 1024). Noise is the fixed buffers of the
checkpoint, so output is deterministic.

    gen = StyleGAN2.from_file("stylegan2-ffhq-config-f.safetensors")   # or a .pt holding the state dict
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

BLUR = (1.0, 3.0, 3.0, 1.0)


def make_kernel(k=BLUR) -> torch.Tensor:
    k = torch.tensor(k, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, then convolve with `kernel` (StyleGAN2's upfirdn2d, down = 1)."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    # One single-channel convolution over all N*C planes. The kernel is symmetric (an outer product of
    # [1,3,3,1]), so convolution and correlation agree and no flip is needed.
    hp, wp = x.shape[-2:]
    out = F.conv2d(x.reshape(n * c, 1, hp, wp), kernel[None, None].to(x.dtype))
    return out.reshape(n, c, out.shape[-2], out.shape[-1])


class EqualLinear(nn.Module):
    def __init__(self, cin: int, cout: int, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
        self.scale, self.lr_mul, self.act = 1 / math.sqrt(cin) * lr_mul, lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.scale)
        if self.act:
            return F.leaky_relu(out + self.bias * self.lr_mul, 0.2) * math.sqrt(2)
        return out + self.bias * self.lr_mul


class ModulatedConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False):
        super().__init__()
        self.cin, self.cout, self.kernel, self.demodulate, self.upsample = cin, cout, kernel, demodulate, upsample
        self.scale = 1 / math.sqrt(cin * kernel ** 2)
        self.weight = nn.Parameter(torch.randn(1, cout, cin, kernel, kernel))
        self.modulation = EqualLinear(style_dim, cin, bias_init=1.0)
        if upsample:
            self.blur = nn.Module()
            self.blur.register_buffer("kernel", make_kernel() * 4)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        # Modulate the activations and demodulate the outputs instead of building per-sample weights
        # (StyleGAN2-ADA's non-fused path): the same result, static kernels (exportable), any batch.
        s = self.modulation(style)  # [N,Cin]
        weight = self.weight[0] * self.scale  # [Cout,Cin,k,k]
        x = x * s[:, :, None, None]
        if self.upsample:
            out = upfirdn2d(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2), self.blur.kernel, pad=(1, 1))
        else:
            out = F.conv2d(x, weight, padding=self.kernel // 2)
        if self.demodulate:
            d = torch.rsqrt((weight[None] * s[:, None, :, None, None]).pow(2).sum([2, 3, 4]) + 1e-8)  # [N,Cout]
            out = out * d[:, :, None, None]
        return out


class StyledConv(nn.Module):
    def __init__(self, cin: int, cout: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, style_dim, upsample=upsample)
        self.noise = nn.Module()
        self.noise.weight = nn.Parameter(torch.zeros(1))
        self.activate = nn.Module()
        self.activate.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        out = self.conv(x, style) + self.noise.weight * noise
        return F.leaky_relu(out + self.activate.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)


class ToRGB(nn.Module):
    def __init__(self, cin: int, style_dim: int, upsample: bool = True):
        super().__init__()
        if upsample:
            self.upsample = nn.Module()
            self.upsample.register_buffer("kernel", make_kernel() * 4)
        self.conv = ModulatedConv2d(cin, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + upfirdn2d(skip, self.upsample.kernel, up=2, pad=(2, 1))
        return out


class StyleGAN2(nn.Module):
    """Generator interface over a StyleGAN2 `g_ema`: mapping(z, truncation), synthesis(styles)."""

    def __init__(self, size: int = 1024, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 lr_mlp: float = 0.01, max_channels: int = 512):
        # size: output side (power of two >= 8); style_dim: latent width; n_mlp: mapping layers;
        # channel_multiplier: 2 for the official FFHQ "config-f", 1 for smaller models; lr_mlp: mapping lr;
        # max_channels: cap on every layer's width (512 in the official models; small for tests).
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"StyleGAN2 size must be a power of two >= 8, got {size}")
        self.name, self.resolution, self.style_dim = f"stylegan2-{size}", size, style_dim
        ch = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
              256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier,
              2048: 8 * channel_multiplier}
        ch = {r: min(c, max_channels) for r, c in ch.items()}
        self.style = nn.Sequential(nn.Identity(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, act=True)
                                                    for _ in range(n_mlp)])
        self.input = nn.Module()
        self.input.input = nn.Parameter(torch.randn(1, ch[4], 4, 4))
        self.conv1 = StyledConv(ch[4], ch[4], style_dim)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False)
        log_size = int(math.log2(size))
        self.num_layers = log_size * 2 - 2
        self.convs, self.to_rgbs, self.noises = nn.ModuleList(), nn.ModuleList(), nn.Module()
        for i in range((log_size - 2) * 2 + 1):
            res = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        cin = ch[4]
        for i in range(3, log_size + 1):
            cout = ch[2 ** i]
            self.convs.append(StyledConv(cin, cout, style_dim, upsample=True))
            self.convs.append(StyledConv(cout, cout, style_dim))
            self.to_rgbs.append(ToRGB(cout, style_dim))
            cin = cout
        self.register_buffer("w_avg", torch.zeros(style_dim))

    @torch.inference_mode()
    def mapping(self, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        w = self.style[1:](x)
        return self.w_avg + truncation * (w - self.w_avg)

    def update_w_avg(self, samples: int = 10_000, seed: int = 123) -> None:
        """Centre of truncation: the mean w of `samples` random z (fixed seed, so reproducible)."""
        g = torch.Generator().manual_seed(seed)
        with torch.inference_mode():
            self.w_avg.copy_(self.mapping(torch.randn(samples, self.style_dim, generator=g), 1.0).mean(0))

    def synthesis(self, styles: torch.Tensor) -> torch.Tensor:
        if styles.ndim != 3 or styles.shape[1:] != (self.num_layers, self.style_dim):
            raise ValueError(f"styles must be [N,{self.num_layers},{self.style_dim}], got {list(styles.shape)}")
        noise = [getattr(self.noises, f"noise_{i}") for i in range(len(self.convs) + 1)]
        out = self.input.input.expand(styles.shape[0], -1, -1, -1)
        out = self.conv1(out, styles[:, 0], noise[0])
        skip = self.to_rgb1(out, styles[:, 1])
        i = 1
        for c1, c2, n1, n2, to_rgb in zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2],
                                          self.to_rgbs, strict=True):
            out = c1(out, styles[:, i], n1)
            out = c2(out, styles[:, i + 1], n2)
            skip = to_rgb(out, styles[:, i + 2], skip)
            i += 2
        return skip

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> StyleGAN2:
        """Build the architecture the keys describe and load them (shapes checked by torch)."""
        if "g_ema" in state and isinstance(state["g_ema"], dict):
            state = state["g_ema"]
        try:
            style_dim = state["style.1.weight"].shape[1]
            n_mlp = len({k for k in state if re.fullmatch(r"style\.\d+\.weight", k)})
            size = 2 ** (len([k for k in state if re.fullmatch(r"to_rgbs\.\d+\.bias", k)]) + 2)
            max_channels = state["input.input"].shape[1]
            cm = state["convs.6.conv.weight"].shape[1] // 256 if size >= 64 and max_channels == 512 else 2
        except KeyError as exc:
            raise ValueError(f"not a StyleGAN2 g_ema state dict (missing {exc}); expected the "
                             "rosinality/stylegan2-pytorch key layout") from None
        model = cls(size, style_dim, n_mlp, max(cm, 1), max_channels=max_channels)
        state = dict(state)
        has_avg = "w_avg" in state
        state.setdefault("w_avg", model.w_avg)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"StyleGAN2 state dict does not fit the architecture its keys describe: {exc}") from None
        if not has_avg:
            model.update_w_avg()
        return model.eval()

    @classmethod
    def from_file(cls, path: Path | str) -> StyleGAN2:
        """Load from .safetensors, or a .pt/.pth holding a state dict (or a dict with "g_ema")."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"StyleGAN2 checkpoint {path} not found")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return cls.from_state_dict(load_file(str(path)))
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises several types for non-weights content
            raise ValueError(
                f"{path} holds more than tensors (training checkpoints pickle their arguments), and live does "
                "not unpickle files it did not make. Extract the generator once, in a Python you trust: "
                "`ck = torch.load(PATH, weights_only=False); torch.save(ck['g_ema'], 'g_ema.pt')` "
                f"({type(exc).__name__})") from None
        return cls.from_state_dict(state)
