"""The scripted demo's face mesh (live/models/demo_mesh.json, made by `python -m live.train.demo_mesh`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DEMO_MESH_PATH = Path(__file__).with_name("demo_mesh.json")


def load_demo_mesh(path: Path = DEMO_MESH_PATH) -> tuple[np.ndarray, tuple[int, int]]:
    """([478,3] float32 MediaPipe landmarks of a face at rest, normalised, (width, height) of its image)."""
    record = json.loads(Path(path).read_text())
    w, h = record["image_size"]
    return np.asarray(record["landmarks"], np.float32), (int(w), int(h))
