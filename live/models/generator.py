"""The generator interface every StyleGAN-family generator implements, and the default one.

    mapping(z [N,512], truncation) -> w [N,512]
    synthesis(styles [N, num_layers, 512]) -> image [N,3,H,W] in [-1,1]

Outputs are deterministic for the same inputs (noise is fixed). `MobileStyleGAN` loads from the asset
store: the OpenVINO IR is imported once into torch and cached as safetensors keyed by the IR's sha256.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from live.models.ir_import import import_ir
from live.models.mobilestylegan import STYLE_DIM, Mapping, Synthesis

log = logging.getLogger(__name__)

IMPORTER_VERSION = "1"  # bump when the import or the cached layout changes
W_AVG_SAMPLES, W_AVG_SEED = 10_000, 123
IR_ASSETS = ("mobilestylegan_mapping_xml", "mobilestylegan_mapping_bin", "mobilestylegan_synthesis_xml",
             "mobilestylegan_synthesis_bin")


@runtime_checkable
class Generator(Protocol):
    name: str
    num_layers: int  # style layers: synthesis takes [N, num_layers, 512]
    resolution: int  # output side in pixels
    style_dim: int

    def mapping(self, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor: ...

    def synthesis(self, styles: torch.Tensor) -> torch.Tensor: ...


def z_from_seed(seed: int, n: int = 1, dim: int = STYLE_DIM) -> torch.Tensor:
    """[n,dim] float32 latent for a seed, as StyleGAN's tools make them (numpy RandomState normal)."""
    if seed < 0 or seed >= 2 ** 32:
        raise ValueError(f"seed must be in 0 .. 2^32-1, got {seed}")
    return torch.from_numpy(np.random.RandomState(seed).randn(n, dim).astype(np.float32))


def broadcast_styles(w: torch.Tensor, num_layers: int) -> torch.Tensor:
    """w [N,512] -> styles [N,num_layers,512] (the same w on every layer)."""
    return w[:, None, :].expand(-1, num_layers, -1).contiguous()


class MobileStyleGAN(nn.Module):
    """MobileStyleGAN-FFHQ-1024 behind the Generator interface."""

    name = "mobilestylegan-ffhq-1024"
    num_layers = Synthesis.num_layers
    resolution = 1024
    style_dim = STYLE_DIM

    def __init__(self, mapping_net: Mapping, synthesis_net: Synthesis, w_avg: torch.Tensor, source_sha256: str = ""):
        # mapping_net / synthesis_net: imported modules; w_avg: [512] mean w (truncation centre);
        # source_sha256: hash of the IR files it came from (identity files record it).
        super().__init__()
        self.mapping_net = mapping_net
        self.synthesis_net = synthesis_net
        self.register_buffer("w_avg", w_avg.reshape(STYLE_DIM).float())
        self.source_sha256 = source_sha256

    @torch.inference_mode()
    def mapping(self, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        w = self.mapping_net(z)
        return self.w_avg + truncation * (w - self.w_avg)

    def synthesis(self, styles: torch.Tensor) -> torch.Tensor:
        return self.synthesis_net(styles)


def _source_hash(store) -> str:
    import hashlib

    h = hashlib.sha256(IMPORTER_VERSION.encode())
    for name in IR_ASSETS:
        h.update(store.asset(name).sha256.encode())
    return h.hexdigest()


def load_mobilestylegan(store) -> MobileStyleGAN:
    """The default generator from the asset store (imported once, then cached as safetensors)."""
    from safetensors.torch import load_file, save_file

    key = _source_hash(store)
    cached = store.cache_dir / f"mobilestylegan-torch-{key[:16]}.safetensors"
    m, s = Mapping(), Synthesis()
    if cached.is_file():
        try:
            tensors = load_file(str(cached))
            m.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("mapping.")})
            s.load_state_dict({k[10:]: v for k, v in tensors.items() if k.startswith("synthesis.")})
            return MobileStyleGAN(m.eval(), s.eval(), tensors["w_avg"], key).eval()
        except (RuntimeError, KeyError, OSError) as exc:  # damaged cache: import again
            log.warning("cached generator %s is unusable (%s): importing the IR again", cached, exc)
    paths = {name: store.resolve(name) for name in IR_ASSETS}
    log.info("importing MobileStyleGAN from its OpenVINO IR (once; cached at %s)", cached)
    m, s = import_ir((paths[IR_ASSETS[0]], paths[IR_ASSETS[1]]), (paths[IR_ASSETS[2]], paths[IR_ASSETS[3]]))
    with torch.inference_mode():
        g = torch.Generator().manual_seed(W_AVG_SEED)
        w_avg = m(torch.randn(W_AVG_SAMPLES, STYLE_DIM, generator=g)).mean(dim=0)
    tensors = {f"mapping.{k}": v.contiguous() for k, v in m.state_dict().items()}
    tensors.update({f"synthesis.{k}": v.contiguous() for k, v in s.state_dict().items()})
    tensors["w_avg"] = w_avg.contiguous()
    _save_atomic(tensors, cached, {"source_sha256": key, "importer": IMPORTER_VERSION}, save_file)
    return MobileStyleGAN(m, s, w_avg, key).eval()


def _save_atomic(tensors: dict, path: Path, metadata: dict, save_file) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
