"""Real faces that packages ship, and short clips made from them, for tests, benchmarks and demos.

scikit-image ships `astronaut()` (Eileen Collins, public domain) and matplotlib ships `grace_hopper.jpg`;
both come with `pip install 'live[test]'`.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np


def astronaut() -> np.ndarray:
    """[512,512,3] uint8 RGB portrait from scikit-image."""
    try:
        from skimage import data
    except ImportError:
        raise RuntimeError("the sample face needs scikit-image: pip install 'live[test]'") from None
    return np.ascontiguousarray(data.astronaut())


def grace_hopper() -> np.ndarray:
    """[600,512,3] uint8 RGB portrait from matplotlib's sample data."""
    try:
        from matplotlib import cbook
    except ImportError:
        raise RuntimeError("the sample face needs matplotlib: pip install 'live[test]'") from None
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        buf = np.frombuffer(f.read(), dtype=np.uint8)
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def moving_clip(path: Path, image: np.ndarray | None = None, frames: int = 90, fps: float = 30.0,
                size: int = 512, turn_deg: float = 8.0) -> Path:
    """Write a video of `image` (default: the astronaut) gently rotating, shifting and zooming in-plane.

    path: .mp4 or .avi; frames / fps / size: length, rate and square frame side; turn_deg: peak roll.
    """
    img = astronaut() if image is None else image
    h, w = img.shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if Path(path).suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (size, size))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for i in range(frames):
            phase = 2 * math.pi * i / max(frames, 1)
            m = cv2.getRotationMatrix2D((w / 2, h / 2), turn_deg * math.sin(phase), 1.0 + 0.05 * math.sin(2 * phase))
            m[:, 2] += (10 * math.sin(phase), 6 * math.cos(phase))
            m *= size / max(h, w)
            frame = cv2.warpAffine(img, m, (size, size), borderMode=cv2.BORDER_REFLECT)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return Path(path)
