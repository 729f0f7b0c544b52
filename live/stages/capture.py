"""Capture: a camera by index, a video file, an image file or a folder of images, as RGB frames.

Files are read as fast as the pipeline takes them, or paced to their own frame rate with
`realtime=True` (what a camera does); `loop=True` starts again at the end. Every problem the user can
cause is a `CaptureError` (a ValueError) with a sentence that says what to do, raised when the source is
opened, before the pipeline starts.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np

from live.frames import Frame
from live.image_file import truncated

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
INPUT_HELP = "give a camera index (0, 1, ...), a video file, an image file or a folder of images"


class CaptureError(ValueError):
    """The input cannot be used; the message says why and what to do."""


class Capture:
    """A `Source` over OpenCV. Use `open_capture()` rather than the constructor."""

    name = "capture"

    def __init__(self, kind: str, label: str, fps: float, realtime: bool, loop: bool, max_frames: int | None,
                 cap: cv2.VideoCapture | None = None, images: list[Path] | None = None,
                 expected_frames: int = 0):
        # kind: "camera" | "video" | "images"; label: what the user gave (for messages); fps: nominal rate;
        # realtime: pace files to fps; loop: restart files at the end; max_frames: stop after this many;
        # cap: an opened VideoCapture (camera, video); images: the files (images); expected_frames: the
        # container's frame count, to tell a truncated file from a normal end.
        self.kind = kind
        self.label = label
        self.fps = fps
        self.realtime = realtime and kind != "camera"
        self.loop = loop and kind != "camera"
        self.max_frames = max_frames
        self.truncated = False  # set when a video ended well before its announced length
        self._cap = cap
        self._images = images or []
        self._expected = expected_frames
        self._seq = 0
        self._index = 0  # position in the current pass over the file(s)
        self._media_offset = 0.0  # media time of earlier loops
        self._t0_ns = 0
        self.pending: np.ndarray | None = None  # a BGR frame already read, returned by the next read

    def start(self) -> None:
        self._t0_ns = 0  # the clock starts at the first read, after every stage has loaded its models

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def read(self) -> Frame | None:
        if self.max_frames is not None and self._seq >= self.max_frames:
            return None
        if not self._t0_ns:
            self._t0_ns = time.perf_counter_ns()
        media_s = self._media_offset + self._index / self.fps
        if self.realtime:
            delay = self._t0_ns / 1e9 + media_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        t0 = time.perf_counter_ns()
        image = self._next_image()
        if image is None:
            return None
        now = time.perf_counter_ns()
        if self.kind == "camera":
            media_s = (now - self._t0_ns) / 1e9
        frame = Frame(seq=self._seq, t_capture_ns=now, t_media_s=media_s, image=image)
        self._seq += 1
        self._index += 1
        return frame.timed(self.name, (now - t0) / 1e6)

    def _next_image(self) -> np.ndarray | None:
        bgr = self._read_raw()
        if bgr is None and self.loop and self._index > 0:
            self._rewind()
            bgr = self._read_raw()
        if bgr is None:
            return None
        if bgr.ndim == 2:
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        if bgr.shape[2] == 4:
            return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _read_raw(self) -> np.ndarray | None:
        if self.kind == "images":
            while self._index < len(self._images):
                path = self._images[self._index]
                image = None if truncated(path) else cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                if image is not None:
                    return _to_8bit(image)
                log.warning("skipping %s: not a readable image (or truncated)", path)
                self._index += 1
            return None
        if self.pending is not None:
            bgr, self.pending = self.pending, None
            return bgr
        ok, bgr = self._cap.read()
        if ok:
            return bgr
        if self.kind == "camera":
            raise CaptureError(f"camera {self.label} stopped delivering frames (unplugged, or taken by "
                               "another program?)")
        if self._expected and self._index < self._expected * 0.98 - 1:
            self.truncated = True
            log.warning("%s ended after %d of the %d frames its header announces: the file looks truncated "
                        "or corrupt; stopping cleanly with what was read", self.label, self._index, self._expected)
        return None

    def _rewind(self) -> None:
        self._media_offset += self._index / self.fps
        self._index = 0
        if self._cap is not None:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)


def _to_8bit(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    return image


def open_capture(spec: str | int, *, realtime: bool = False, loop: bool = False, fps: float | None = None,
                 max_frames: int | None = None) -> Capture:
    """Open an input and check it can be read; raises CaptureError with a sentence otherwise.

    spec: camera index ("0") or a path; realtime: pace files to their frame rate; loop: restart at the end;
    fps: frame rate for images (default 30) or to override a camera's; max_frames: stop after this many.
    """
    if max_frames is not None and max_frames < 1:
        raise CaptureError(f"max_frames must be at least 1, got {max_frames}")
    text = str(spec).strip()
    if text.isdigit():
        return _open_camera(int(text), fps, max_frames)
    path = Path(os.path.expanduser(text))
    if not path.exists():
        raise CaptureError(f"input {text!r} not found: {INPUT_HELP}")
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not images:
            raise CaptureError(f"folder {text!r} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        return Capture("images", text, fps or 30.0, realtime, loop, max_frames, images=images)
    if not os.access(path, os.R_OK):
        raise CaptureError(f"input {text!r} cannot be read (permission denied)")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        if cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is None:
            raise CaptureError(f"{text!r} is not a readable image (OpenCV could not decode it)")
        if truncated(path):
            raise CaptureError(f"{text!r} ends before its image does (truncated: a copy that did not finish?)")
        return Capture("images", text, fps or 30.0, realtime, loop, max_frames, images=[path])
    return _open_video(path, text, realtime, loop, fps, max_frames)


def _open_video(path: Path, text: str, realtime: bool, loop: bool, fps: float | None,
                max_frames: int | None) -> Capture:
    cap = cv2.VideoCapture(str(path))
    ok, first = (cap.read() if cap.isOpened() else (False, None))
    if not ok:
        cap.release()
        raise CaptureError(f"{text!r} is not a readable video or image: OpenCV could not decode it (truncated, "
                           f"corrupt, or not a media file); {INPUT_HELP}")
    native = cap.get(cv2.CAP_PROP_FPS)
    rate = fps or (native if 1.0 <= native <= 240.0 else 30.0)
    expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    capture = Capture("video", text, rate, realtime, loop, max_frames, cap=cap, expected_frames=max(expected, 0))
    capture.pending = first  # the frame read to check the file is handed out first (seeking back can skip)
    return capture


def _open_camera(index: int, fps: float | None, max_frames: int | None) -> Capture:
    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        cap.release()
        raise CaptureError(f"camera {index} could not be opened: is it connected and not in use by another "
                           "program? On Linux, `ls /dev/video*` lists the cameras; try another index, or give "
                           "a video file instead")
    if fps:
        cap.set(cv2.CAP_PROP_FPS, fps)
    native = cap.get(cv2.CAP_PROP_FPS)
    return Capture("camera", str(index), fps or (native if 1.0 <= native <= 240.0 else 30.0), False, False,
                   max_frames, cap=cap)


class FrameList:
    """A Source of frames already in memory (tracked ones, for benchmarks that drive several avatars with one
    clip), delivered in order."""

    kind = "frames"

    def __init__(self, frames: list, fps: float = 25.0, name: str = "frames"):
        # frames: Frame objects in capture order; fps: their nominal rate.
        self.frames, self.fps, self.name = list(frames), fps, name
        self._next = 0

    def start(self) -> None:
        self._next = 0

    def read(self):
        if self._next >= len(self.frames):
            return None
        self._next += 1
        return self.frames[self._next - 1]

    def close(self) -> None:
        pass

