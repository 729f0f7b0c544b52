"""Reading a rendered or captured face: MediaPipe's signals and landmarks, dlib's identity descriptor.

One harness for everything that measures faces the generator made: the calibration and the MediaPipe
surrogate's data (live.train.generated_faces), the avatar fit (live.avatar_fit.RenderedAvatar) and
benchmarks/quality.py's identity distance.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Reading(NamedTuple):
    """What was read of one image; None where MediaPipe (signals, landmarks) or dlib (descriptor) found no face,
    or the descriptor was not asked for."""

    signals: np.ndarray | None  # [55] live.models.encoder.SIGNAL_NAMES
    landmarks: np.ndarray | None  # [478,2] pixels
    descriptor: np.ndarray | None  # [128] dlib


class FaceReader:
    """MediaPipe's FaceLandmarker (still images) and dlib's descriptor, for [H,W,3] uint8 RGB images."""

    def __init__(self, store):
        # store: the AssetStore that resolves the face_landmarker and dlib models.
        from live.landmarker import FaceTracker
        from live.metrics.face_distance import IdentityMetric

        self.tracker = FaceTracker(store.resolve("face_landmarker"), num_faces=1, video=False)
        self.metric = IdentityMetric(store)

    def track(self, rgb: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(signals [55], landmarks [478,2] px) of the first face MediaPipe finds, else (None, None)."""
        from live.models.encoder import face_signals

        faces = self.tracker.detect(rgb, 0.0)
        if not faces:
            return None, None
        h, w = rgb.shape[:2]
        return face_signals(faces[0]), faces[0].landmarks[:, :2] * np.array([w, h], np.float32)

    def describe(self, rgb: np.ndarray) -> np.ndarray | None:
        """dlib's [128] descriptor of the face (no upsampling: rendered faces fill the image), else None."""
        return self.metric.descriptor(rgb, upsample=0)

    def close(self) -> None:
        self.tracker.close()
