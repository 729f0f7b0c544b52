"""Learned live heads: the 256² and 512² faces from an early block, closer to the full generator's output than
the closed-form 1x1 heads (live.models.early_exit, kept as the reference path).

A head reads the features of the exit block (256 channels at 128² for a 256² face, 128 at 256² for 512²) and
writes the generator's 12 wavelet bands, as MobileStyleGAN's own last layer does, then one inverse Haar step:

    bands = linear(x) + out(dw(act(pw(dw(act(reduce(x)))))))

`linear` starts as the closed-form head; the convolutional branch (a 1x1 reduction to a few channels, two
depthwise-separable 3x3 convolutions, a 1x1 to the bands, zero at the start) adds what a per-pixel map cannot:
texture and edges from the neighbourhood. It is distilled from the full network's output downsampled
(`python -m live.train.live_heads`), on generated faces with the encoder's offsets applied.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from live.models.mobilestylegan import LRELU

HEADS_PATH = Path(__file__).with_name("live_heads.safetensors")
META_PATH = Path(__file__).with_name("live_heads.json")
WIDTH = {256: 64, 512: 32}  # the convolutional branch's channels per output size (cost: see the module docstring)
BANDS = 12


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


def load_live_heads(generator_sha256: str | None = None, path: Path = HEADS_PATH) -> dict[int, LiveHead] | None:
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
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        head = LiveHead(state["linear.weight"].shape[1], state["reduce.weight"].shape[0])
        head.load_state_dict(state)
        heads[size] = head.eval().requires_grad_(False)
    return heads


def head_tensors(heads: dict[int, LiveHead]) -> dict[str, torch.Tensor]:
    return {f"head{size}.{k}": v.detach().contiguous() for size, head in heads.items()
            for k, v in head.state_dict().items()}
