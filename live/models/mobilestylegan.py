"""MobileStyleGAN (Belousov, 2021) in plain torch: a StyleGAN2 generator distilled into depthwise-separable
modulated convolutions and wavelet (inverse Haar DWT) upsampling, producing 1024x1024 FFHQ faces.

Written from the paper's description and the structure of the published OpenVINO IR; weights come from
that IR through `live.models.ir_import`. Differences from the training code, all exact rewrites:
- demodulation does not depend on the style in MobileStyleGAN, so it is folded into the pointwise and
  3x3 weights (as the exported IR has it);
- the per-layer noise is fixed (the IR bakes `noise_weight * noise` in as constants): output is
  deterministic for given styles;
- every modulation layer takes its own w (W+, `styles [N, 23, 512]`), where the IR feeds one w to all.

Style layer order (23): conv1, then for each of the 7 blocks: up, conv1, conv2; then the final to_img.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

STYLE_DIM = 512
CHANNELS = (512, 512, 512, 512, 512, 256, 128, 64)  # 4x4 input, then one block per doubling up to 512x512
LRELU = 0.2
HAAR = 1.0 / math.sqrt(2.0)


class Mapping(nn.Module):
    """z [N,512] -> w [N,512]: pixel norm, then 8 x (linear, leaky ReLU 0.2, x sqrt(2))."""

    def __init__(self, layers: int = 8, dim: int = STYLE_DIM):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        for linear in self.linears:
            x = F.leaky_relu(linear(x), LRELU) * math.sqrt(2.0)
        return x


def haar_synthesis(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """One level of inverse Haar DWT ("db1", zero mode): low [N,C,H,W], high [N,C,3,H,W] (LH, HL, HH)
    -> [N,C,2H,2W]. out[2i+a, 2j+b] = sum over bands of g[a] g[b] * band, g0 = (s, s), g1 = (s, -s)."""
    ll = low
    lh, hl, hh = high.unbind(dim=2)
    # Sub-pixel (a, b) in {00, 01, 10, 11}: signs of g1 at a (rows) and b (columns).
    s = HAAR * HAAR
    p00 = (ll + lh + hl + hh) * s
    p01 = (ll + lh - hl - hh) * s
    p10 = (ll - lh + hl - hh) * s
    p11 = (ll - lh - hl + hh) * s
    n, c, h, w = ll.shape
    out = torch.stack([p00, p01, p10, p11], dim=2).reshape(n, c * 4, h, w)
    return F.pixel_shuffle(out, 2)


def bands_to_image(freq: torch.Tensor) -> torch.Tensor:
    """The generator's 12 wavelet bands [N,12,H,W] (3 low, then LH/HL/HH per colour) -> image [N,3,2H,2W]."""
    n, _, h, w = freq.shape
    return haar_synthesis(freq[:, :3], freq[:, 3:].reshape(n, 3, 3, h, w))


def haar_analysis(image: torch.Tensor) -> torch.Tensor:
    """Inverse of `haar_synthesis` for an image [N,C,2H,2W] -> [N, C + 3C, H, W]: the C low bands, then
    for each channel its (LH, HL, HH) (the layout the generator's wavelet output uses)."""
    n, c, h2, w2 = image.shape
    p = F.pixel_unshuffle(image, 2).reshape(n, c, 4, h2 // 2, w2 // 2)
    p00, p01, p10, p11 = p.unbind(dim=2)
    ll = (p00 + p01 + p10 + p11) * 0.5
    lh = (p00 + p01 - p10 - p11) * 0.5
    hl = (p00 - p01 + p10 - p11) * 0.5
    hh = (p00 - p01 - p10 + p11) * 0.5
    high = torch.stack([lh, hl, hh], dim=2).reshape(n, 3 * c, h2 // 2, w2 // 2)
    return torch.cat([ll, high], dim=1)


class ModulatedConv(nn.Module):
    """x * (modulation(w) * scale) -> conv. Depthwise-separable (3x3 depthwise + 1x1) or plain 1x1."""

    def __init__(self, cin: int, cout: int, depthwise: bool):
        super().__init__()
        self.cin, self.cout, self.depthwise = cin, cout, depthwise
        self.modulation = nn.Linear(STYLE_DIM, cin)
        self.scale = 1.0 / math.sqrt(cin * (9 if depthwise else 1))
        self.weight_dw = nn.Parameter(torch.zeros(cin, 1, 3, 3)) if depthwise else None  # [Cin,1,3,3]
        self.weight = nn.Parameter(torch.zeros(cout, cin, 1, 1))  # [Cout,Cin,1,1], demodulation folded in

    def styles(self, w: torch.Tensor) -> torch.Tensor:
        """[N,512] -> per-input-channel multipliers [N,Cin]."""
        return self.modulation(w) * self.scale

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        x = x * m[:, :, None, None]
        if self.depthwise:
            x = F.conv2d(x, self.weight_dw, padding=1, groups=self.cin)
        return F.conv2d(x, self.weight)


class StyledConv(nn.Module):
    """Modulated conv + fixed noise + bias + leaky ReLU."""

    def __init__(self, cin: int, cout: int, size: int, depthwise: bool = True, full3x3: bool = False):
        super().__init__()
        if full3x3:  # the 4x4 layer is a plain modulated 3x3 conv
            self.conv = ModulatedConv(cin, cout, depthwise=False)
            self.conv.scale = 1.0 / math.sqrt(cin * 9)
            self.conv.weight = nn.Parameter(torch.zeros(cout, cin, 3, 3))
        else:
            self.conv = ModulatedConv(cin, cout, depthwise=depthwise)
        self.register_buffer("noise", torch.zeros(1, 1, size, size))  # noise_weight * noise, fixed
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        x = x * m[:, :, None, None]
        c = self.conv
        if c.depthwise:
            x = F.conv2d(x, c.weight_dw, padding=1, groups=c.cin)
        x = F.conv2d(x, c.weight, padding=c.weight.shape[-1] // 2)
        return F.leaky_relu(x + self.noise + self.bias, LRELU)


class Block(nn.Module):
    """Wavelet upsampling (modulated split into low/high bands, inverse Haar) and two styled convs."""

    def __init__(self, cin: int, cout: int, size: int):
        super().__init__()
        self.up_modulation = nn.Linear(STYLE_DIM, cin)  # multiplies the input before the inverse DWT (no scale)
        self.conv1 = StyledConv(cin // 4, cout, size)
        self.conv2 = StyledConv(cout, cout, size)

    def upsample(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        x = x * m[:, :, None, None]
        n, c, h, w = x.shape
        q = c // 4
        return haar_synthesis(x[:, :q], x[:, q:].reshape(n, q, 3, h, w))


class Synthesis(nn.Module):
    """styles [N,23,512] (W+) -> image [N,3,1024,1024] in about [-1,1]."""

    num_layers = 23

    def __init__(self):
        super().__init__()
        self.input = nn.Parameter(torch.zeros(1, CHANNELS[0], 4, 4))
        self.conv1 = StyledConv(CHANNELS[0], CHANNELS[0], 4, full3x3=True)
        self.blocks = nn.ModuleList(
            Block(cin, cout, 8 * 2 ** i) for i, (cin, cout) in enumerate(zip(CHANNELS[:-1], CHANNELS[1:]))
        )
        self.to_img = ModulatedConv(CHANNELS[-1], 12, depthwise=False)  # 3 low + 9 high wavelet bands
        self.to_img_bias = nn.Parameter(torch.zeros(1, 12, 1, 1))

    def modulations(self, styles: torch.Tensor) -> list[torch.Tensor]:
        """Per style layer, the per-channel multipliers [N,C] (23 of them, in style layer order)."""
        if styles.ndim != 3 or styles.shape[1:] != (self.num_layers, STYLE_DIM):
            raise ValueError(f"styles must be [N,{self.num_layers},{STYLE_DIM}], got {list(styles.shape)}")
        return [self.modulation(layer, styles[:, layer]) for layer in range(self.num_layers)]

    def modulation(self, layer: int, w: torch.Tensor) -> torch.Tensor:
        """Multipliers [N,C] of one style layer for w [N,512] (layer order: see the module docstring)."""
        if layer == 0:
            return self.conv1.conv.styles(w)
        if layer == self.num_layers - 1:
            return self.to_img.styles(w)
        block, slot = divmod(layer - 1, 3)
        b = self.blocks[block]
        if slot == 0:
            return b.up_modulation(w)
        return (b.conv1 if slot == 1 else b.conv2).conv.styles(w)

    def forward(self, styles: torch.Tensor) -> torch.Tensor:
        return self.render(self.modulations(styles), styles.shape[0])

    def render(self, mods: list[torch.Tensor], batch: int, features_of: int | None = None) -> torch.Tensor:
        """The convolutional part, given the 23 per-channel multipliers (see `modulations`).

        features_of: stop after this block and return its features [N,C,H,W] (for early-exit heads).
        """
        x = self.input.expand(batch, -1, -1, -1)
        x = self.conv1(x, mods[0])
        for i, b in enumerate(self.blocks):
            x = b.upsample(x, mods[1 + 3 * i])
            x = b.conv1(x, mods[2 + 3 * i])
            x = b.conv2(x, mods[3 + 3 * i])
            if i == features_of:
                return x
        return bands_to_image(self.to_img(x, mods[22]) + self.to_img_bias)  # bands [N,12,512,512]
