"""Face tracking: MediaPipe Tasks FaceLandmarker in VIDEO mode -> landmarks, blendshapes, head pose.

Per frame: 478 landmarks, the 52 blendshapes and the 4x4 facial transformation matrix, turned into
yaw/pitch/roll in degrees and a translation. All signals go through One-Euro smoothing (strength 0 turns
it off). Frames without a face get `face=None`; with several faces the largest is tracked (said once).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from live.frames import Face, Frame
from live.landmarker import FaceTracker
from live.smoothing import SignalSmoother

log = logging.getLogger(__name__)


class TrackingStage:
    """Pipeline stage: adds `Face` (or None) to every frame."""

    name = "tracking"

    def __init__(self, model_path: Path, smoothing: float = 1.0, num_faces: int = 2, max_side: int = 640):
        # model_path: face_landmarker.task; smoothing: One-Euro strength, 0 = off;
        # num_faces / max_side: see FaceTracker.
        self.tracker = FaceTracker(model_path, num_faces=num_faces, max_side=max_side)
        self.smoother = SignalSmoother(smoothing)
        self._warned_many = False
        self.frames = 0  # frames seen
        self.faces = 0  # frames with a face

    def open(self) -> None:
        """Load MediaPipe now, on this thread (the CLI does it on the main thread, which keeps MediaPipe's start-up
        chatter off the terminal); otherwise start() does it on the stage's thread."""
        self.tracker.open()

    def start(self) -> None:
        self.tracker.open()

    def close(self) -> None:
        self.tracker.close()

    def process(self, frame: Frame) -> Frame:
        faces = self.tracker.detect(frame.image, frame.t_media_s)
        self.frames += 1
        if not faces:
            self.smoother.reset()  # a face that comes back starts fresh instead of sliding from the old one
            return frame.replace(face=None, tracked=True)
        self.faces += 1
        face = faces[0]
        if len(faces) > 1 and not self._warned_many:
            self._warned_many = True
            log.warning("%d faces in view (first seen at frame %d): tracking the largest", len(faces), frame.seq)
        return frame.replace(face=self.smooth(face, frame.t_media_s), tracked=True)

    def smooth(self, face: Face, t: float) -> Face:
        s = self.smoother
        if not s.enabled:
            return face
        angles = s("angles", np.array([face.yaw, face.pitch, face.roll]), t)
        return Face(
            landmarks=s("landmarks", face.landmarks, t).astype(np.float32),
            blendshapes=np.clip(s("blendshapes", face.blendshapes, t), 0.0, 1.0).astype(np.float32),
            yaw=float(angles[0]), pitch=float(angles[1]), roll=float(angles[2]),
            translation=tuple(float(v) for v in s("translation", np.array(face.translation), t)),
            matrix=face.matrix, num_faces=face.num_faces,
        )
