"""Face tracking: MediaPipe Tasks FaceLandmarker in VIDEO mode -> landmarks, blendshapes, head pose.

Per frame: 478 landmarks, the 52 blendshapes and the 4x4 facial transformation matrix, turned into
yaw/pitch/roll in degrees and a translation. All signals go through One-Euro smoothing (strength 0 turns
it off). Frames without a face get `face=None`; with several faces the largest is tracked (said once).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from live.frames import BLENDSHAPE_NAMES, NUM_LANDMARKS, Face, Frame
from live.smoothing import SignalSmoother

log = logging.getLogger(__name__)


def matrix_to_pose(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from MediaPipe's facial transformation matrix.

    MediaPipe's matrix maps the canonical face (x right, y up, z towards the camera, as the image shows
    it) into camera space. With R = Rz(roll) Ry(yaw) Rx(pitch): yaw > 0 turns the face towards the
    image's right, pitch > 0 tilts the chin up, roll > 0 rotates the face counter-clockwise on screen.
    """
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    r = r / np.linalg.norm(r, axis=0, keepdims=True)  # drop the model's scale
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    # MediaPipe's x rotation is positive for a chin-down nod; report chin-up as positive. Signs were
    # checked on real clips (yaw follows the nose's shift, pitch its rise) and a rotated photo (roll).
    return yaw, -pitch, roll


@contextlib.contextmanager
def native_stderr_to_log():
    """Catch what MediaPipe's C++ side writes to fd 2 while it starts (glog/TFLite chatter) and pass it
    to this module's debug log instead of the user's terminal. Errors still raise Python exceptions."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode(errors="replace").splitlines():
                log.debug("mediapipe: %s", line)


def _bbox_area(landmarks: np.ndarray) -> float:
    span = landmarks[:, :2].max(axis=0) - landmarks[:, :2].min(axis=0)
    return float(span[0] * span[1])


class FaceTracker:
    """A MediaPipe FaceLandmarker (VIDEO mode) and the conversion of its results into `Face` objects."""

    def __init__(self, model_path: Path, num_faces: int = 2, max_side: int = 640):
        # model_path: face_landmarker.task (from the asset store); num_faces: faces MediaPipe looks for
        # (> 1 lets the tracker notice and skip extra faces); max_side: frames are downscaled to this
        # longest side before MediaPipe (its models run at 256 px; bigger frames only cost resizing).
        if num_faces < 1:
            raise ValueError(f"num_faces must be >= 1, got {num_faces}")
        if max_side < 64:
            raise ValueError(f"max_side must be >= 64 pixels, got {max_side}")
        self.model_path = Path(model_path)
        self.num_faces = num_faces
        self.max_side = max_side
        self._landmarker = None
        self._last_ts_ms = -1

    def open(self) -> None:
        import mediapipe as mp  # heavy import, only where tracking is used
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=self.num_faces,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        with native_stderr_to_log():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
            # The first inference prints more start-up chatter; run it here on a blank frame.
            blank = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8))
            self._landmarker.detect_for_video(blank, 0)
        self._last_ts_ms = 0

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def detect(self, rgb: np.ndarray, t_s: float) -> list[Face]:
        """All faces in an [H,W,3] uint8 RGB image at media time t_s, largest first (unsmoothed)."""
        if self._landmarker is None:
            self.open()
        h, w = rgb.shape[:2]
        if max(h, w) > self.max_side:
            s = self.max_side / max(h, w)
            rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        ts = max(int(round(t_s * 1000.0)), self._last_ts_ms + 1)  # VIDEO mode needs increasing timestamps
        self._last_ts_ms = ts
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._landmarker.detect_for_video(image, ts)
        faces = []
        for i, lms in enumerate(result.face_landmarks):
            landmarks = np.array([(p.x, p.y, p.z) for p in lms], dtype=np.float32)
            if landmarks.shape[0] != NUM_LANDMARKS:
                raise RuntimeError(f"MediaPipe returned {landmarks.shape[0]} landmarks, expected {NUM_LANDMARKS}: "
                                   "is face_landmarker.task the right model?")
            blend = np.array([c.score for c in result.face_blendshapes[i]], dtype=np.float32)
            names = tuple(c.category_name for c in result.face_blendshapes[i])
            if names != BLENDSHAPE_NAMES:
                raise RuntimeError("MediaPipe's blendshape names differ from the ones live expects; "
                                   "is face_landmarker.task the right model?")
            matrix = np.asarray(result.facial_transformation_matrixes[i], dtype=np.float32).reshape(4, 4)
            yaw, pitch, roll = matrix_to_pose(matrix)
            faces.append(Face(landmarks=landmarks, blendshapes=blend, yaw=yaw, pitch=pitch, roll=roll,
                              translation=tuple(float(v) for v in matrix[:3, 3]), matrix=matrix,
                              num_faces=len(result.face_landmarks)))
        faces.sort(key=lambda f: _bbox_area(f.landmarks), reverse=True)
        return faces


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
