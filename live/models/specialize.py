"""Synthesis specialised to one identity: only the first K style layers take a per-frame offset.

    image = synthesis(identity + [offset [N,K,512], zeros for layers K..22])

Everything that depends only on the identity is computed once: the modulation of layers >= K is folded
into their convolution weights (x * m then conv == conv with weights scaled per input channel), the
wavelet-upsampling multipliers become constant vectors, and noise + bias become one constant map.
K = 0 renders the identity exactly (and is then a constant image, cached).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from live.models.mobilestylegan import LRELU, STYLE_DIM, Synthesis, bands_to_image, haar_synthesis


def _fold(weight: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Scale a conv weight [Cout,Cin,kh,kw] (or depthwise [Cin,1,kh,kw]) by per-input-channel m [1,Cin]."""
    if weight.shape[1] == 1 and weight.shape[0] == m.shape[1]:  # depthwise
        return weight * m[0][:, None, None, None]
    return weight * m[0][None, :, None, None]


class FixedIdentitySynthesis(nn.Module):
    """`forward(offset [N,K,512]) -> image [N,3,1024,1024]` for a fixed identity `styles [1,23,512]`."""

    def __init__(self, synthesis: Synthesis, identity: torch.Tensor, k: int,
                 head: tuple[int, torch.Tensor, torch.Tensor] | tuple[int, nn.Module] | None = None):
        # synthesis: the full network (its weights are shared, not copied, for the dynamic layers);
        # identity: W+ styles [1,23,512]; k: number of leading style layers that take an offset (0..23);
        # head: stop after a block (early exit) with (block, weight [12,C,1,1], bias [1,12,1,1]), a closed-form
        # 1x1 head, or (block, module), a learned head (its `image(features)` is the face, live.models.live_head).
        super().__init__()
        n = synthesis.num_layers
        if identity.shape != (1, n, STYLE_DIM):
            raise ValueError(f"identity must be [1,{n},{STYLE_DIM}], got {list(identity.shape)}")
        if not 0 <= k <= n:
            raise ValueError(f"K (layers with an offset) must be in 0..{n}, got {k}")
        self.k = k
        self.synthesis = synthesis
        with torch.no_grad():
            mods = synthesis.modulations(identity)
            self.register_buffer("identity_head", identity[:, :k].clone())
            convs = [synthesis.conv1] + [c for b in synthesis.blocks for c in (b.conv1, b.conv2)]
            conv_layers = [0] + [2 + 3 * i + j for i in range(len(synthesis.blocks)) for j in (0, 1)]
            self.conv_weights = nn.ParameterList()  # per styled conv: main weight (folded if constant)
            self.dw_weights = nn.ParameterList()  # depthwise weight (folded if constant) or empty
            self.const_maps = nn.ParameterList()  # noise + bias, [1,C,H,W]
            for conv, layer in zip(convs, conv_layers, strict=True):
                c = conv.conv
                fixed = layer >= k
                if c.depthwise:
                    dw = _fold(c.weight_dw, mods[layer]) if fixed else c.weight_dw
                    self.dw_weights.append(nn.Parameter(dw.clone(), requires_grad=False))
                    pw = c.weight
                else:
                    self.dw_weights.append(nn.Parameter(torch.empty(0), requires_grad=False))
                    pw = _fold(c.weight, mods[layer]) if fixed else c.weight
                self.conv_weights.append(nn.Parameter(pw.clone(), requires_grad=False))
                self.const_maps.append(nn.Parameter((conv.noise + conv.bias).clone(), requires_grad=False))
            self.up_mods = nn.ParameterList(  # constant upsampling multipliers (unused where dynamic)
                nn.Parameter(mods[1 + 3 * i].clone(), requires_grad=False) for i in range(len(synthesis.blocks)))
            self.exit_block = len(synthesis.blocks) - 1 if head is None else head[0]
            self.learned_head = head[1] if head is not None and len(head) == 2 else None
            if self.learned_head is not None:  # its own weights; img_weight/img_bias stay empty
                w = torch.empty(0)
            elif head is not None:
                w = head[1]
            else:
                w = _fold(synthesis.to_img.weight, mods[n - 1]) if k <= n - 1 else synthesis.to_img.weight
            self.img_weight = nn.Parameter(w.clone(), requires_grad=False)
            bias = synthesis.to_img_bias if head is None else torch.empty(0) if len(head) == 2 else head[2]
            self.register_buffer("img_bias", bias.clone())
            self.register_buffer("constant_image", torch.empty(0))
            if k == 0:
                self.constant_image = self._render(1, {})

    def weights_changed(self) -> None:
        """Call after changing the parameters in place (a tuning): K = 0's cached constant image is drawn again."""
        if self.k == 0:
            with torch.no_grad():
                self.constant_image = self._render(1, {})

    def _dynamic_mods(self, offset: torch.Tensor) -> dict[int, torch.Tensor]:
        """Multipliers [N,C] of the first K layers for identity + offset."""
        styles = self.identity_head + offset
        return {layer: self.synthesis.modulation(layer, styles[:, layer]) for layer in range(self.k)}

    def forward(self, offset: torch.Tensor) -> torch.Tensor:
        if offset.ndim != 3 or offset.shape[1:] != (self.k, STYLE_DIM):
            raise ValueError(f"offset must be [N,{self.k},{STYLE_DIM}], got {list(offset.shape)}")
        n = offset.shape[0]
        if self.k == 0:
            return self.constant_image.expand(n, -1, -1, -1)
        return self._render(n, self._dynamic_mods(offset))

    def _render(self, n: int, mods: dict[int, torch.Tensor]) -> torch.Tensor:
        s = self.synthesis
        x = s.input.expand(n, -1, -1, -1)
        x = self._conv(x, 0, mods.get(0), 0)
        for i in range(self.exit_block + 1):
            up = mods.get(1 + 3 * i, self.up_mods[i])
            x = x * up[:, :, None, None]
            h, w = x.shape[-2:]
            q = x.shape[1] // 4
            x = haar_synthesis(x[:, :q], x[:, q:].reshape(n, q, 3, h, w))
            x = self._conv(x, 1 + 2 * i, mods.get(2 + 3 * i), 1)
            x = self._conv(x, 2 + 2 * i, mods.get(3 + 3 * i), 1)
        if self.learned_head is not None:
            return self.learned_head.image(x)
        m = mods.get(s.num_layers - 1)
        if m is not None and self.exit_block == len(s.blocks) - 1:
            x = x * m[:, :, None, None]
        return bands_to_image(F.conv2d(x, self.img_weight) + self.img_bias)

    def _conv(self, x: torch.Tensor, idx: int, m: torch.Tensor | None, depthwise: int) -> torch.Tensor:
        if m is not None:
            x = x * m[:, :, None, None]
        if depthwise:
            x = F.conv2d(x, self.dw_weights[idx], padding=1, groups=x.shape[1])
        weight = self.conv_weights[idx]
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
        return F.leaky_relu(x + self.const_maps[idx], LRELU)
