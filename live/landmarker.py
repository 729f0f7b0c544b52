"""MediaPipe FaceLandmarker (Tasks API, VIDEO mode) turned into `Face` objects.

Reading the result: MediaPipe's Python wrapper copies every one of the 478 landmarks into a Python
object (about 0.6 ms a frame here) before we copy them again into numpy. The fast path calls the same C
function the wrapper calls and reads the result structs straight into numpy (0.07 ms); it is used when
the wrapper has the expected internals, and checked against the public API (the reference path) by the
tests. Either way the numbers are bit-identical.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import re
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np

from live.frames import BLENDSHAPE_NAMES, NUM_LANDMARKS, Face

log = logging.getLogger(__name__)


def matrix_to_pose(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from MediaPipe's facial transformation matrix.

    With R = Rz(roll) Ry(yaw) Rx(pitch) in MediaPipe's frame (x right, y up, z towards the camera):
    yaw > 0 turns the face towards the image's right, pitch > 0 lifts the chin, roll > 0 rotates the face
    counter-clockwise on screen.
    """
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    r = r / np.linalg.norm(r, axis=0, keepdims=True)  # drop the model's scale
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    # MediaPipe's x rotation is positive for a chin-down nod; report chin-up as positive. Signs were
    # checked on real clips (yaw follows the nose's shift, pitch its rise) and a rotated photo (roll).
    return yaw, -pitch, roll


# glog lines ("W0000 00:00:... file.cc:181] ..."), glog's preamble, TFLite's INFO lines
NATIVE_CHATTER = re.compile(r"^([IWEF]\d{4} |WARNING: Logging before InitGoogle|INFO: |WARNING: All log messages before)")


@contextlib.contextmanager
def native_stderr_to_log():
    """Catch what MediaPipe's C++ side writes to fd 2 while it starts (glog/TFLite chatter) and pass it
    to this module's debug log instead of the user's terminal. Errors still raise Python exceptions.

    File descriptors belong to the process: this redirects only on the main thread (two threads redirecting at
    once left a server's stderr pointing at a deleted file). Elsewhere the chatter shows. Whatever else was
    written meanwhile (other threads' log lines) is passed on to stderr, not swallowed."""
    if log.isEnabledFor(logging.DEBUG) or threading.current_thread() is not threading.main_thread():
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
                if NATIVE_CHATTER.match(line):
                    log.debug("mediapipe: %s", line)
                else:
                    sys.stderr.write(line + "\n")


def _floats(ptr, count: int, struct: type, fields: tuple[str, ...]) -> np.ndarray:
    """[count, len(fields)] float32 read from a C array of `struct` without per-element Python objects."""
    size = ctypes.sizeof(struct)
    dtype = np.dtype({"names": list(fields), "formats": ["<f4"] * len(fields),
                      "offsets": [getattr(struct, f).offset for f in fields], "itemsize": size})
    raw = (ctypes.c_char * (count * size)).from_address(ctypes.addressof(ptr.contents))
    rows = np.frombuffer(raw, dtype=dtype, count=count)
    return np.stack([rows[f] for f in fields], axis=1).astype(np.float32)  # copies: the C result is freed


def _bbox_area(landmarks: np.ndarray) -> float:
    span = landmarks[:, :2].max(axis=0) - landmarks[:, :2].min(axis=0)
    return float(span[0] * span[1])


class FaceTracker:
    """A MediaPipe FaceLandmarker (VIDEO mode) and the conversion of its results into `Face` objects."""

    def __init__(self, model_path: Path, num_faces: int = 2, max_side: int = 640, fast: bool = True,
                 video: bool = True):
        # model_path: face_landmarker.task (from the asset store); num_faces: faces MediaPipe looks for
        # (> 1 lets the tracker notice and skip extra faces); max_side: frames are downscaled to this
        # longest side before MediaPipe (its models run at 256 px; bigger frames only cost resizing);
        # fast: read results straight from MediaPipe's C structs when possible (else the public API);
        # video: VIDEO mode (tracks across frames) or IMAGE mode (every image on its own, e.g. datasets).
        if num_faces < 1:
            raise ValueError(f"num_faces must be >= 1, got {num_faces}")
        if max_side < 64:
            raise ValueError(f"max_side must be >= 64 pixels, got {max_side}")
        self.model_path = Path(model_path)
        self.num_faces = num_faces
        self.max_side = max_side
        self.fast = fast
        self.video = video
        self._landmarker = None
        self._names_checked = False
        self._last_ts_ms = -1

    def open(self) -> None:
        """Load the model (once; later calls do nothing). On the main thread its start-up chatter goes to the
        debug log (native_stderr_to_log)."""
        if self._landmarker is not None:
            return
        import mediapipe as mp  # heavy import, only where tracking is used
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.VIDEO if self.video else vision.RunningMode.IMAGE,
            num_faces=self.num_faces,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        with native_stderr_to_log():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
            # The first inference prints more start-up chatter; run it here on a blank frame.
            blank = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8))
            if self.video:
                self._landmarker.detect_for_video(blank, 0)
            else:
                self._landmarker.detect(blank)
        self._last_ts_ms = 0
        self.fast = self.fast and self._fast_path_available()

    def _fast_path_available(self) -> bool:
        try:
            from mediapipe.tasks.python.components.containers.category_c import MpCategoryC
            from mediapipe.tasks.python.components.containers.landmark_c import MpNormalizedLandmarkC
            from mediapipe.tasks.python.vision import face_landmarker as fl

            self._c = (fl.MpFaceLandmarkerResultC, MpNormalizedLandmarkC, MpCategoryC)
            fn = "MpFaceLandmarkerDetectForVideo" if self.video else "MpFaceLandmarkerDetectImage"
            return callable(getattr(self._landmarker._lib, fn, None)) and hasattr(self._landmarker, "_handle")
        except (ImportError, AttributeError):
            log.info("this MediaPipe version has other internals: reading results through its public API")
            return False

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
        raw = self._detect_fast(image, ts) if self.fast else self._detect_public(image, ts)
        faces = [self._face(*r, num_faces=len(raw)) for r in raw]
        faces.sort(key=lambda f: _bbox_area(f.landmarks), reverse=True)
        return faces

    def _detect_public(self, image, ts: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple]]:
        """Reference path: MediaPipe's public API."""
        result = self._landmarker.detect_for_video(image, ts) if self.video else self._landmarker.detect(image)
        out = []
        for i, lms in enumerate(result.face_landmarks):
            landmarks = np.array([(p.x, p.y, p.z) for p in lms], dtype=np.float32)
            blend = np.array([c.score for c in result.face_blendshapes[i]], dtype=np.float32)
            names = tuple(c.category_name for c in result.face_blendshapes[i])
            matrix = np.asarray(result.facial_transformation_matrixes[i], dtype=np.float32).reshape(4, 4)
            out.append((landmarks, blend, matrix, names))
        return out

    def _detect_fast(self, image, ts: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple]]:
        """The same C call as detect_for_video, with the result read by numpy."""
        result_type, landmark_type, category_type = self._c
        lm = self._landmarker
        result = result_type()
        if self.video:
            lm._lib.MpFaceLandmarkerDetectForVideo(lm._handle, image._image_ptr, None, ts, ctypes.byref(result))
        else:
            lm._lib.MpFaceLandmarkerDetectImage(lm._handle, image._image_ptr, None, ctypes.byref(result))
        try:
            out = []
            for i in range(result.face_landmarks_count):
                lms, cats = result.face_landmarks[i], result.face_blendshapes[i]
                landmarks = _floats(lms.landmarks, lms.landmarks_count, landmark_type, ("x", "y", "z"))
                blend = _floats(cats.categories, cats.categories_count, category_type, ("score",))[:, 0]
                names = () if self._names_checked else tuple(
                    cats.categories[j].category_name.decode() for j in range(cats.categories_count))
                matrix = result.facial_transformation_matrixes[i].to_numpy().astype(np.float32).reshape(4, 4)
                out.append((landmarks, blend, matrix, names))
            return out
        finally:
            lm._lib.MpFaceLandmarkerCloseResult(ctypes.byref(result))

    def _face(self, landmarks: np.ndarray, blend: np.ndarray, matrix: np.ndarray, names: tuple,
              num_faces: int) -> Face:
        if landmarks.shape[0] != NUM_LANDMARKS or blend.shape[0] != len(BLENDSHAPE_NAMES):
            raise RuntimeError(f"MediaPipe returned {landmarks.shape[0]} landmarks and {blend.shape[0]} "
                               f"blendshapes, expected {NUM_LANDMARKS} and {len(BLENDSHAPE_NAMES)}: is "
                               "face_landmarker.task the right model?")
        if not self._names_checked:
            if names != BLENDSHAPE_NAMES:
                raise RuntimeError("MediaPipe's blendshape names differ from the ones live expects; "
                                   "is face_landmarker.task the right model?")
            self._names_checked = True
        yaw, pitch, roll = matrix_to_pose(matrix)
        return Face(landmarks=landmarks, blendshapes=blend, yaw=yaw, pitch=pitch, roll=roll,
                    translation=tuple(float(v) for v in matrix[:3, 3]), matrix=matrix, num_faces=num_faces)


def faces_in_image(model_path: Path, rgb: np.ndarray, num_faces: int = 1, max_side: int = 1024) -> list[Face]:
    """The faces MediaPipe finds on one still image ([H,W,3] uint8 RGB; IMAGE mode, largest first), with a tracker
    made for it and closed after."""
    tracker = FaceTracker(model_path, num_faces=num_faces, max_side=max_side, video=False)
    try:
        return tracker.detect(rgb, 0.0)
    finally:
        tracker.close()
