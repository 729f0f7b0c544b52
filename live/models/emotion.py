"""Emotion edits in latent space (Bruns & Choe): w_edit = w + alpha * n, where n is the normal of a linear
SVM that separates latents by an emotion label. Here the latents are the reenactment offsets on the first
K style layers of generated faces, labelled happy (+) or sad (-) by MediaPipe's mouthSmile blendshapes
relative to the face's own neutral; n is scaled so that alpha = 1 is one standard deviation of the
natural spread along it. Fitted by `python -m live.train.fit_emotion` and committed with its metadata.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DIRECTION_PATH = Path(__file__).with_name("emotion_happy_sad.safetensors")
META_PATH = DIRECTION_PATH.with_suffix(".json")


def load_direction(k: int, path: Path = DIRECTION_PATH) -> np.ndarray | None:
    """The happy(+)/sad(-) direction [1,K,512] float32, or None (with a log line) when unavailable."""
    if not path.is_file():
        log.info("no emotion direction at %s: the emotion control is off", path)
        return None
    from safetensors.numpy import load_file

    n = load_file(str(path))["direction"]
    if n.ndim == 3 and n.shape[0] == 1 and n.shape[1] < k and n.shape[2] == 512:  # no change in the layers it lacks
        n = np.concatenate([n, np.zeros((1, k - n.shape[1], 512), n.dtype)], axis=1)
    if n.shape != (1, k, 512):
        log.warning("emotion direction %s is for K=%d, the encoder drives K=%d: emotion control off", path,
                    n.shape[1], k)
        return None
    return n.astype(np.float32)


def metadata(path: Path = META_PATH) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}
