"""Learned live heads: the 256² and 512² faces from an early block, closer to the full generator's output than
the closed-form 1x1 heads (live.models.early_exit, kept as the reference path).

The 256² head (`LiveHead`) reads the features of block 4 (256 channels at 128²) and writes the generator's 12
wavelet bands, as MobileStyleGAN's own last layer does, then one inverse Haar step:

    bands = linear(x) + out(dw(act(pw(dw(act(reduce(x)))))))

`linear` starts as the closed-form head; the convolutional branch (a 1x1 reduction to a few channels, two
depthwise-separable 3x3 convolutions, a 1x1 to the bands, zero at the start) adds what a per-pixel map cannot:
texture and edges from the neighbourhood. It is distilled from the full network's output downsampled
(`python -m live.train.live_heads`), on generated faces with the encoder's offsets applied.

The 512² head (`LastBlockHead`) is the generator's own last block, narrowed. The full output area-averaged to 512²
is exactly the low band of the last layer's wavelets, and the last block with every face's style replaced by the
training faces' mean style draws it at LPIPS 0.02; no head reading block 5 alone came near (a LiveHead from block 5
plateaued at 0.20 at 512², worse than the true 256² face upsampled, 0.13). So the head runs the last block's
wavelet upsampling and its two depthwise-separable convolutions at 512² with `width` of its 64 channels and that
fixed style folded in, and writes the low band (3 channels: the face itself); it starts as the pruned block and
is distilled like the 256² head.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from live.models.mobilestylegan import HAAR, LRELU, bands_to_image, haar_synthesis

HEADS_PATH = Path(__file__).with_name("live_heads.safetensors")
META_PATH = Path(__file__).with_name("live_heads.json")
WIDTH = {256: 64, 512: 32}  # LiveHead's branch at 256², LastBlockHead's channels at 512²
BANDS = 12
HAAR_LOW = HAAR * HAAR  # the full output area-averaged to half its side is this times the low band


class LiveHead(nn.Module):
    """features [N,C,H,W] -> wavelet bands [N,12,H,W] (bands_to_image makes the [N,3,2H,2W] face)."""

    def __init__(self, cin: int, width: int):
        super().__init__()
        self.cin, self.width = cin, width
        self.linear = nn.Conv2d(cin, BANDS, 1)
        self.reduce = nn.Conv2d(cin, width, 1)
        self.dw1 = nn.Conv2d(width, width, 3, padding=1, groups=width)
        self.pw1 = nn.Conv2d(width, width, 1)
        self.dw2 = nn.Conv2d(width, width, 3, padding=1, groups=width)
        self.out = nn.Conv2d(width, BANDS, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @classmethod
    def from_linear(cls, weight: torch.Tensor, bias: torch.Tensor, width: int) -> LiveHead:
        """A head that starts as the closed-form one (weight [12,C,1,1], bias [1,12,1,1])."""
        head = cls(weight.shape[1], width)
        with torch.no_grad():
            head.linear.weight.copy_(weight)
            head.linear.bias.copy_(bias.reshape(-1))
        return head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The linear bands and the reduction as one 1x1 convolution: one pass over the wide input, not two.
        entry = F.conv2d(x, torch.cat([self.linear.weight, self.reduce.weight]),
                         torch.cat([self.linear.bias, self.reduce.bias]))
        bands, h = entry[:, :BANDS], F.leaky_relu(entry[:, BANDS:], LRELU)
        h = F.leaky_relu(self.pw1(self.dw1(h)), LRELU)
        return bands + self.out(self.dw2(h))

    def image(self, x: torch.Tensor, at: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """The face [N,3,2H,2W] (`at`: where a crop of the features starts; nothing here depends on it)."""
        return bands_to_image(self(x))


class LastBlockHead(nn.Module):
    """Block 5's features [N,C,H,W] -> the face [N,3,2H,2W]: the last block at a fixed style, `width` channels wide.

        x = haar_up(x * up); x = act(pw1(dw1(x)) + noise1); x = act(pw2(dw2(x)) + noise2); face = out(x)
    """

    def __init__(self, cin: int, width: int, side: int):
        super().__init__()
        q = cin // 4  # the wavelet upsampling turns 4 bands of q channels into q channels at twice the side
        self.cin, self.width = cin, width
        self.up = nn.Parameter(torch.ones(1, cin, 1, 1))
        self.dw1 = nn.Conv2d(q, q, 3, padding=1, groups=q, bias=False)
        self.pw1 = nn.Conv2d(q, width, 1)
        self.dw2 = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
        self.pw2 = nn.Conv2d(width, width, 1)
        self.out = nn.Conv2d(width, 3, 1)
        self.register_buffer("noise1", torch.zeros(1, 1, side, side))  # the generator's fixed noise, as it is
        self.register_buffer("noise2", torch.zeros(1, 1, side, side))

    @classmethod
    def from_block(cls, synthesis, styles: torch.Tensor, width: int) -> LastBlockHead:
        """The generator's last block at the mean modulation of `styles` [N,23,512], keeping the `width` channels
        of each convolution the output reads most (all 64: the mean-style block itself)."""
        b, n = synthesis.blocks[-1], synthesis.num_layers
        with torch.no_grad():
            m_up, m1, m2, m_img = (synthesis.modulation(layer, styles[:, layer]).mean(0)
                                   for layer in (n - 4, n - 3, n - 2, n - 1))
            head = cls(b.up_modulation.out_features, width, b.conv1.noise.shape[-1])
            c1, c2 = b.conv1, b.conv2
            w2 = c2.conv.weight * m2[None, :, None, None]
            face = synthesis.to_img.weight[:3] * m_img[None, :, None, None] * HAAR_LOW  # [3,64,1,1]
            keep2 = face[:, :, 0, 0].norm(dim=0).argsort(descending=True)[:width].sort().values
            reads1 = w2[keep2, :, 0, 0].abs().sum(0) * c2.conv.weight_dw[:, 0].abs().sum((1, 2))
            keep1 = reads1.argsort(descending=True)[:width].sort().values
            head.up.copy_(m_up[None, :, None, None])
            head.dw1.weight.copy_(c1.conv.weight_dw * m1[:, None, None, None])
            head.pw1.weight.copy_(c1.conv.weight[keep1])
            head.pw1.bias.copy_(c1.bias[0, keep1, 0, 0])
            head.dw2.weight.copy_(c2.conv.weight_dw[keep1])
            head.pw2.weight.copy_(w2[keep2][:, keep1])
            head.pw2.bias.copy_(c2.bias[0, keep2, 0, 0])
            head.out.weight.copy_(face[:, keep2])
            head.out.bias.copy_(synthesis.to_img_bias[0, :3, 0, 0] * HAAR_LOW)
            head.noise1.copy_(c1.noise)
            head.noise2.copy_(c2.noise)
        return head

    def image(self, x: torch.Tensor, at: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """The face [N,3,2H,2W]; x may be a crop of the features that starts at `at` (training on crops)."""
        x = x * self.up
        n, c, h, w = x.shape
        q = c // 4
        x = haar_synthesis(x[:, :q], x[:, q:].reshape(n, q, 3, h, w))
        noise1, noise2 = self.noise1, self.noise2
        if (2 * h, 2 * w) != noise1.shape[-2:]:
            y0, x0 = 2 * at[0], 2 * at[1]
            noise1 = noise1[..., y0:y0 + 2 * h, x0:x0 + 2 * w]
            noise2 = noise2[..., y0:y0 + 2 * h, x0:x0 + 2 * w]
        x = F.leaky_relu(self.pw1(self.dw1(x)) + noise1, LRELU)
        x = F.leaky_relu(self.pw2(self.dw2(x)) + noise2, LRELU)
        return self.out(x)

    forward = image


def load_live_heads(generator_sha256: str | None = None,
                    path: Path = HEADS_PATH) -> dict[int, LiveHead | LastBlockHead] | None:
    """{size: head} from the committed file (None when it is not there); refuses heads distilled from another
    generator."""
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    made_for = header.get("generator_sha256")
    if generator_sha256 and made_for and made_for != generator_sha256:
        raise ValueError(f"the live heads in {path} were distilled from generator {made_for[:12]}, not "
                         f"{generator_sha256[:12]}: run `python -m live.train.live_heads` for this generator")
    heads = {}
    for size in sorted({int(k.split(".")[0][4:]) for k in tensors}):
        prefix = f"head{size}."
        state = {k[len(prefix):]: v.float() for k, v in tensors.items() if k.startswith(prefix)}
        if "noise1" in state:
            head = LastBlockHead(state["up"].shape[1], state["pw1.weight"].shape[0], state["noise1"].shape[-1])
        else:
            head = LiveHead(state["linear.weight"].shape[1], state["reduce.weight"].shape[0])
        head.load_state_dict(state)
        heads[size] = head.eval().requires_grad_(False)
    return heads


def head_tensors(heads: dict[int, nn.Module]) -> dict[str, torch.Tensor]:
    """The heads' tensors by "head<size>.<name>"; the fixed noise maps in float16 (they are 512² each)."""
    return {f"head{size}.{k}": (v.half() if k.startswith("noise") else v).detach().contiguous()
            for size, head in heads.items() for k, v in head.state_dict().items()}
