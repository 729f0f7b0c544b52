"""Deformation encoder: driving signals -> W+ offset of the first K style layers.

Baseline (Bounareli et al., 2022): a linear map from the *change* of facial signals (52 blendshapes,
yaw/pitch/roll) to a shift of the first K style layers, fitted in closed form on generated faces
(`python -m live.train.fit_encoder`). Zero change gives a zero offset, so a still driver leaves the
avatar exactly on its identity.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from live.frames import BLENDSHAPE_NAMES, Face

WEIGHTS_PATH = Path(__file__).with_name("encoder_linear.safetensors")
META_PATH = Path(__file__).with_name("encoder_linear.json")
POSE_SCALE = 30.0  # degrees per unit: head angles enter the signal vector as yaw/30, pitch/30, roll/30
NUM_SIGNALS = len(BLENDSHAPE_NAMES) + 3


def signal_vector(blendshapes: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """[..., 55] float32: the 52 blendshapes then yaw, pitch, roll / POSE_SCALE."""
    return np.concatenate([np.asarray(blendshapes, np.float32), np.asarray(pose, np.float32) / POSE_SCALE],
                          axis=-1)


def face_signals(face: Face) -> np.ndarray:
    return signal_vector(face.blendshapes, np.array([face.yaw, face.pitch, face.roll], np.float32))


class LinearEncoder:
    """offset [1,K,512] = delta_signals [55] @ A [55, K*512]."""

    def __init__(self, matrix: np.ndarray, k: int, meta: dict | None = None):
        # matrix: [55, K*512] float32; k: style layers it drives; meta: training metadata (for reports).
        if matrix.shape != (NUM_SIGNALS, k * 512):
            raise ValueError(f"encoder matrix must be [{NUM_SIGNALS},{k * 512}], got {list(matrix.shape)}")
        self.matrix, self.k, self.meta = matrix.astype(np.float32), k, meta or {}

    def __call__(self, delta: np.ndarray) -> np.ndarray:
        return (np.asarray(delta, np.float32) @ self.matrix).reshape(1, self.k, 512)

    @classmethod
    def load(cls, path: Path = WEIGHTS_PATH, generator_sha256: str | None = None) -> LinearEncoder:
        """The committed encoder; refuses one fitted for another generator."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"no encoder weights at {path}: run `python -m live.train.fit_encoder`")
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        meta_path = Path(path).with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        if generator_sha256 and meta.get("generator_sha256") not in (None, generator_sha256):
            raise ValueError(f"encoder {path} was fitted for generator {meta.get('generator_sha256', '?')[:12]}, "
                             f"not {generator_sha256[:12]}: fit it again for this generator")
        matrix = tensors["matrix"].numpy()
        return cls(matrix, int(matrix.shape[1] // 512), meta)

    def save(self, path: Path, meta: dict) -> None:
        import os
        import tempfile

        from safetensors.torch import save_file

        fd, tmp = tempfile.mkstemp(prefix=".encoder.", dir=Path(path).parent)
        os.close(fd)
        try:
            save_file({"matrix": torch.from_numpy(self.matrix)}, tmp, metadata={"k": str(self.k)})
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        Path(path).with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
