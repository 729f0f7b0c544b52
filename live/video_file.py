"""Video files that play everywhere: H.264 (yuv420p, the index at the front) through PyAV's own FFmpeg and libx264.

OpenCV's writer made MPEG-4 Part 2 ("mp4v") in .mp4, which browsers and QuickTime refuse. .avi and .mkv stay
Motion JPEG (every frame a picture: large, simple to cut)."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# extension -> (PyAV codec, container options)
CODECS = {
    ".mp4": ("libx264", {"movflags": "+faststart"}),
    ".m4v": ("libx264", {"movflags": "+faststart"}),
    ".mov": ("libx264", {"movflags": "+faststart"}),
    ".avi": ("mjpeg", {}),
    ".mkv": ("mjpeg", {}),
}
X264_OPTIONS = {"crf": "20", "preset": "veryfast"}  # visually clean at a few Mbit/s; fast enough beside synthesis
MIN_SIDE = 16  # smallest side written: a macroblock (smaller frames are refused with a sentence)


class VideoFileError(ValueError):
    """A video that cannot be written, said as a sentence."""


def even(n: int) -> int:
    """yuv420p halves both sides: H.264 wants even dimensions."""
    return max(2, n - n % 2)


class VideoWriter:
    """Writes RGB frames to `path` (its extension picks the codec: CODECS) at a constant `fps`."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], name: str | None = None):
        # path: the file to write (for a sink: its partial name); fps: frames per second of the file;
        # size: (width, height) of the frames given (odd sides are cropped by one pixel for H.264);
        # name: the file as the user knows it, for messages (default: path).
        import av

        self.path = Path(path)
        name = name or str(path)
        w, h = size
        if min(w, h) < MIN_SIDE:
            raise VideoFileError(f"cannot write {name}: {w}x{h} frames cannot be encoded (give an input of at "
                                 f"least {MIN_SIDE}x{MIN_SIDE} pixels)")
        suffix = self.path.suffix.lower()
        if suffix not in CODECS:
            raise VideoFileError(f"cannot write {name}: unsupported extension {suffix!r}; use one of "
                                 f"{', '.join(sorted(CODECS))}")
        codec, container_options = CODECS[suffix]
        self.codec = codec
        self.size = (even(w), even(h)) if codec == "libx264" else (w, h)
        rate = Fraction(fps).limit_denominator(1001)
        self._container = None
        try:
            self._container = av.open(str(self.path), mode="w", options=container_options)
            self._stream = self._container.add_stream(codec, rate=rate,
                                                      options=X264_OPTIONS if codec == "libx264" else {})
            self._stream.width, self._stream.height = self.size
            self._stream.pix_fmt = "yuv420p" if codec == "libx264" else "yuvj420p"
        except (av.FFmpegError, OSError, ValueError) as exc:
            if self._container is not None:
                self._container.close()
            self.path.unlink(missing_ok=True)
            raise VideoFileError(f"cannot write {name} ({codec}, {w}x{h}): {exc}") from exc
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        """One frame, [H,W,3] uint8 RGB of the size given at the start."""
        import av

        w, h = self.size
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
        frame.pts = self.frames
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except av.FFmpegError as exc:  # e.g. the disk is full
            raise VideoFileError(f"writing {self.path} failed at frame {self.frames}: {exc}") from exc
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (the index goes to the front: one more pass over the file)."""
        import av

        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
        except av.FFmpegError as exc:
            raise VideoFileError(f"finishing {self.path} failed: {exc}") from exc
