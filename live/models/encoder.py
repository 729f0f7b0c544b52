"""Deformation encoder: driving signals -> W+ offset of the first K style layers.

Baseline (Bounareli et al., 2022): a linear map from the *change* of facial signals (52 blendshapes,
yaw/pitch/roll) to a shift of the first K style layers, fitted in closed form on generated faces
(`python -m live.train.fit_encoder`). Zero change gives a zero offset, so a still driver leaves the
avatar exactly on its identity.

The calibrated encoder `live` drives with is live.encoder.Encoder (the linear map's head rows, one direction
per expression through measured response curves, an identity governor); this module holds what both share:
the signal vector and the linear map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from live.frames import BLENDSHAPE_NAMES, Face
from live.models.tensor_file import read_tensors, write_tensors

WEIGHTS_PATH = Path(__file__).with_name("encoder_linear.safetensors")
META_PATH = Path(__file__).with_name("encoder_linear.json")
CALIBRATED_PATH = Path(__file__).with_name("encoder_calibrated.safetensors")
POSE_SCALE = 30.0  # degrees per unit: head angles enter the signal vector as yaw/30, pitch/30, roll/30
SIGNAL_NAMES = (*BLENDSHAPE_NAMES, "yaw", "pitch", "roll")  # the order of the signal vector
SIGNAL_INDEX = {name: i for i, name in enumerate(SIGNAL_NAMES)}
NUM_SIGNALS = len(SIGNAL_NAMES)
POSE_ANGLES = [SIGNAL_INDEX["yaw"], SIGNAL_INDEX["pitch"]]  # the head angles the identity governor costs


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
        """The committed linear encoder; refuses one fitted for another generator."""
        tensors, meta, _ = read_tensors(path, generator_sha256, "fit_encoder")
        return cls.from_tensors(tensors, meta)

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray], meta: dict) -> LinearEncoder:
        return cls(t["matrix"], int(t["matrix"].shape[1] // 512), meta)

    def tensors(self) -> dict[str, np.ndarray]:
        return {"matrix": self.matrix}

    def save(self, path: Path, meta: dict) -> None:
        """Weights (safetensors) and PATH.json with the training metadata, each written then renamed."""
        write_tensors(path, self.tensors(), meta, {"k": str(self.k)})
