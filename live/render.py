"""Building the synthesis network for a fixed identity, its ONNX export, and a backend to run it.

`SynthesisNet` is what every backend runs: offset [1,K,512] -> image [1,3,S,S] in [-1,1], where the
identity is folded in (see live.models.specialize) and S is 256, 512 or 1024 (downsampled from 1024 by
area averaging). ONNX files are written under engines/ with a name that carries everything they depend
on (generator hash, identity hash, K, size, torch version), atomically.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from live.backends.base import Backend, BackendError, TensorSpec
from live.models.generator import MobileStyleGAN, broadcast_styles, z_from_seed
from live.models.specialize import FixedIdentitySynthesis
from live.tuning import Tuning

log = logging.getLogger(__name__)

SIZES = (256, 512, 1024)
ENGINES_DIR = Path(__file__).resolve().parent.parent / "engines"
BACKENDS = ("auto", "torch", "torch-compile", "torch-compile-bf16", "onnxruntime", "openvino", "tensorrt")


class SynthesisNet(nn.Module):
    """offset [1,K,512] -> image [1,3,size,size] in [-1,1] for one identity."""

    def __init__(self, generator: MobileStyleGAN, identity: torch.Tensor, k: int, size: int = 1024,
                 early_exit: bool = True, tuning: Tuning | None = None, learned_head: bool = True):
        # generator: the loaded generator; identity: W+ [1,num_layers,512]; k: offset layers; size: output side;
        # early_exit: below 1024, stop early with an output head (else render 1024 and downsample);
        # tuning: this identity's pivotal tuning (live.tuning), applied at 256² with early exit (other sizes render
        # untuned); it was made with a head and renders with that one; learned_head: otherwise, the learned head
        # (live.models.live_head) where the install has one for this size, else the closed-form 1x1 head.
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"size must be one of {', '.join(map(str, SIZES))}, got {size}")
        self.k, self.size, self.tuning = k, size, tuning
        self.head_tag = ""  # what the output head is, for engine file names: "", -exit<sha>, -live<sha>
        head = None
        if early_exit and size < 1024:
            from live.models.early_exit import EXIT_BLOCK, HEADS_PATH, load_heads
            from live.models.live_head import HEADS_PATH as LIVE_PATH
            from live.models.live_head import load_live_heads

            if tuning is not None:
                learned_head = tuning.head == "learned"
            learned = load_live_heads(generator.source_sha256) if learned_head else None
            heads = load_heads()
            if learned and size in learned:
                head, self.head_tag = (EXIT_BLOCK[size], learned[size]), "-live" + _file_tag(LIVE_PATH)
            elif heads is None:
                log.warning("no early-exit heads in this install: rendering 1024 and downsampling (slower)")
            else:
                head, self.head_tag = (EXIT_BLOCK[size], *heads[size]), "-exit" + _file_tag(HEADS_PATH)
        self.early_exit = head is not None
        self.learned = head is not None and len(head) == 2
        self.fixed = FixedIdentitySynthesis(generator.synthesis_net, identity, k, head=head)
        # A tuning is for the 256² view it was made on: applied to the full network (--size 512/1024) its block
        # deltas made the 1024² picture less like the photo (LPIPS 0.22 -> 0.25-0.27 on 3 of 7 portraits).
        self.tuned = tuning is not None and size == 256 and self.early_exit
        if self.tuned:
            tuning.apply(self.fixed, with_head=self.learned == (tuning.head == "learned"))
            self.fixed.weights_changed()
        elif tuning is not None:
            log.info("the identity's tuning is for --size 256: the %d² view renders untuned", size)
            self.tuning = None

    def forward(self, offset: torch.Tensor) -> torch.Tensor:
        img = self.fixed(offset)
        if self.size != img.shape[-1]:
            img = F.avg_pool2d(img, img.shape[-1] // self.size)
        return img


def seed_identity(generator: MobileStyleGAN, seed: int, truncation: float = 0.7) -> torch.Tensor:
    """W+ styles [1,num_layers,512] of a generated identity."""
    return broadcast_styles(generator.mapping(z_from_seed(seed), truncation), generator.num_layers)


def identity_hash(identity: torch.Tensor) -> str:
    return hashlib.sha256(identity.detach().float().contiguous().numpy().tobytes()).hexdigest()


def identity_key(identity: torch.Tensor, tuning: Tuning | None = None) -> str:
    """sha256 of what an avatar looks like: its styles and, for an enrolled one, its pivotal tuning."""
    if tuning is None:
        return identity_hash(identity)
    return hashlib.sha256((identity_hash(identity) + tuning.key()).encode()).hexdigest()


def onnx_name(generator: MobileStyleGAN, identity: torch.Tensor, k: int, size: int, head_tag: str,
              tuning: Tuning | None = None) -> str:
    """The engine file's name: everything the network depends on (head_tag: SynthesisNet.head_tag)."""
    ident = identity_key(identity, tuning)
    return (f"synthesis-g{generator.source_sha256[:10]}-id{ident[:10]}-k{k}-s{size}"
            f"{head_tag}-torch{torch.__version__.split('+')[0]}.onnx")


def live_head_tag(size: int) -> str:
    """The tag of the learned head SynthesisNet uses at `size` by default ("" where the install has none): what a
    cache of renders through it is keyed by."""
    from live.models.live_head import HEADS_PATH, load_live_heads

    heads = load_live_heads()
    return "-live" + _file_tag(HEADS_PATH) if heads and size in heads else ""


def _file_tag(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def export_onnx(net: SynthesisNet, path: Path) -> Path:
    """Export `net` to ONNX at `path` (written to a temp file, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        example = torch.zeros(1, net.k, 512)
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks are constant here
            torch.onnx.export(net.eval(), (example,), tmp, input_names=["offset"], output_names=["image"],
                              dynamo=False, opset_version=17, do_constant_folding=True)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def make_backend(kind: str, net: SynthesisNet, generator: MobileStyleGAN, identity: torch.Tensor,
                 device: str = "cpu", engines_dir: Path = ENGINES_DIR) -> Backend:
    """A backend of `kind` running `net` (exports ONNX on first use for the ONNX-based kinds)."""
    if kind == "auto" and not device.startswith("cuda"):
        from live.backends.auto import (
            CHOICES_NAME,
            cpu_candidates,
            fastest,
            machine_key,
        )

        kinds = cpu_candidates()
        shape = f"k{net.k}-s{net.size}{net.head_tag}" + ("-tuned" if net.tuned else "")
        return fastest(kinds, lambda k: make_backend(k, net, generator, identity, device, engines_dir),
                       {"offset": np.zeros((1, net.k, 512), np.float32)}, engines_dir / CHOICES_NAME,
                       machine_key(shape, kinds))[1]
    if kind == "auto":
        kind = "torch-compile"
        log.info("synthesis backend: %s", kind)
    specs_in = {"offset": TensorSpec((1, net.k, 512))}
    specs_out = {"image": TensorSpec((1, 3, net.size, net.size))}
    if kind.startswith("torch"):
        from live.backends.torch_backend import TorchBackend

        on_gpu = device.startswith("cuda")
        return TorchBackend(net, specs_in, specs_out, device=device, compile="compile" in kind,
                            bf16=kind.endswith("bf16"), cuda_graph=on_gpu, host_outputs=not on_gpu)
    if kind not in BACKENDS:
        raise BackendError(f"unknown backend {kind!r}; choose from {', '.join(BACKENDS)}")
    onnx_path = engines_dir / onnx_name(generator, identity, net.k, net.size, net.head_tag, net.tuning)
    if not onnx_path.exists():
        log.info("exporting the synthesis network to %s", onnx_path)
        export_onnx(net, onnx_path)
    if kind == "onnxruntime":
        from live.backends.onnxruntime_backend import OrtBackend

        return OrtBackend(onnx_path, device="cuda" if device.startswith("cuda") else "cpu")
    if kind == "openvino":
        from live.backends.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(onnx_path)
    from live.backends.tensorrt_backend import TensorRtBackend, engine_path

    return TensorRtBackend(engine_path(onnx_path, engines_dir))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[1,3,H,W] float in [-1,1] -> [H,W,3] uint8 RGB."""
    pixels = ((np.clip(image[0], -1.0, 1.0) + 1.0) * 127.5 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(pixels.transpose(1, 2, 0))
