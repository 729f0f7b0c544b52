"""File sinks: an annotated video and/or one JSON object per frame, each written to a temp file and
renamed into place when the run ends (also after Ctrl-C or an error), so no half-written file is left
under the name the user asked for."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from live.draw import annotate
from live.frames import Frame
from live.video_file import CODECS, VideoFileError, VideoWriter

log = logging.getLogger(__name__)


def check_output_path(path: Path, suffixes: set[str] | None = None) -> Path:
    """Raise ValueError with a sentence when `path` cannot be written."""
    path = Path(path).expanduser()
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise ValueError(f"output {path}: unsupported extension {path.suffix!r}; use one of "
                         f"{', '.join(sorted(suffixes))}")
    parent = path.parent.resolve()
    if not parent.is_dir():
        raise ValueError(f"output {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"output {path}: folder {parent} is not writable")
    if path.is_dir():
        raise ValueError(f"output {path} is a folder; give a file name")
    return path


def guard_outputs(outputs: list, inputs: list, overwrite: bool) -> None:
    """One policy for every command's outputs: ValueError when an output is one of the inputs (or named twice),
    or already exists and `overwrite` (-y/--overwrite) was not given. None entries are skipped; inputs that are
    not files (a camera index) cannot collide."""
    seen: list[Path] = []
    for out in (Path(o).expanduser() for o in outputs if o is not None):
        for given in (Path(str(i)).expanduser() for i in inputs if i is not None):
            if given.exists() and (out.resolve() == given.resolve() or out.exists() and os.path.samefile(out, given)):
                raise ValueError(f"output {out} is the input {given}: writing it would destroy the input; "
                                 "choose another output name")
        if any(out.resolve() == other.resolve() for other in seen):
            raise ValueError(f"{out} is named as two outputs; give each its own file")
        seen.append(out)
        if out.exists() and not overwrite:
            raise ValueError(f"{out} already exists: pass -y/--overwrite to replace it, or choose another name")


def partial_path(path: Path) -> Path:
    """Temp name beside `path`, keeping the extension (the writer picks the container from it)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


class FileSink:
    """Pipeline stage: writes frames (annotated with the tracking result) and/or per-frame JSON lines."""

    name = "sink"

    def __init__(self, video: Path | None = None, jsonl: Path | None = None, fps: float = 30.0,
                 draw: bool = True, landmarks: bool = False, side_by_side: bool = False):
        # video: .mp4/.mov/.m4v (H.264) or .avi/.mkv (Motion JPEG) path, or None; jsonl: path or None;
        # fps: frame rate of the written video;
        # draw: draw landmarks and pose on the input; landmarks: include the 478 landmarks in the JSON;
        # side_by_side: write [driver | avatar] (else the avatar when there is one, the input otherwise).
        self.video = check_output_path(video, set(CODECS)) if video else None
        self.jsonl = check_output_path(jsonl) if jsonl else None
        self.fps = fps
        self.draw = draw
        self.landmarks = landmarks
        self.side_by_side = side_by_side
        self._writer: VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._json = None
        self._t0_ns: int | None = None
        self.written = 0

    def start(self) -> None:
        if self.jsonl:
            self._json = open(partial_path(self.jsonl), "w", encoding="utf-8")

    def process(self, frame: Frame) -> Frame:
        if self._t0_ns is None:
            self._t0_ns = frame.t_capture_ns
        if self._json is not None:  # first: the JSON lines do not depend on the video encoder
            self._json.write(json.dumps(self.record(frame)) + "\n")
        if self.video:
            self._write_video(frame)
        self.written += 1
        return frame

    def _write_video(self, frame: Frame) -> None:
        image = self.picture(frame)
        h, w = image.shape[:2]
        if self._writer is None:
            self._size = (w, h)
            self._writer = VideoWriter(partial_path(self.video), self.fps, self._size, name=str(self.video))
        if (w, h) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)

    def picture(self, frame: Frame) -> np.ndarray:
        """What goes into the video for this frame ([H,W,3] uint8 RGB)."""
        if frame.output is not None and not self.side_by_side:
            return frame.output
        driver = annotate(frame) if self.draw else frame.image
        if frame.output is None:
            return driver
        side = frame.output.shape[0]
        scale = side / driver.shape[0]
        driver = cv2.resize(driver, (max(1, round(driver.shape[1] * scale)), side), interpolation=cv2.INTER_AREA)
        return np.hstack([driver, frame.output])

    def record(self, frame: Frame) -> dict:
        """The JSON object written for one frame."""
        face = frame.face
        rec = {
            "seq": frame.seq,
            "t_capture_ms": round((frame.t_capture_ns - (self._t0_ns or frame.t_capture_ns)) / 1e6, 3),
            "t_media_s": round(frame.t_media_s, 4),
            "face": face is not None,
            "yaw": None, "pitch": None, "roll": None, "translation": None, "blendshapes": None,
            "num_faces": 0,
            "timings_ms": {name: round(ms, 3) for name, ms in frame.timings},
        }
        if face is not None:
            rec.update(yaw=round(face.yaw, 3), pitch=round(face.pitch, 3), roll=round(face.roll, 3),
                       translation=[round(v, 3) for v in face.translation], blendshapes=face.blendshape_dict(),
                       num_faces=face.num_faces)
            if self.landmarks:
                rec["landmarks"] = [[round(float(v), 5) for v in p] for p in face.landmarks]
        return rec

    def close(self) -> None:
        """Finish each output (written then renamed); the JSON lines are kept even when the video fails."""
        if self._json is not None:
            self._json.close()
            self._json = None
            os.replace(partial_path(self.jsonl), self.jsonl)
            log.debug("wrote %s (%d lines)", self.jsonl, self.written)
        if self._writer is not None:
            writer, self._writer = self._writer, None
            partial = partial_path(self.video)
            try:
                writer.close()
            except (VideoFileError, OSError) as exc:
                partial.unlink(missing_ok=True)
                raise VideoFileError(f"could not finish {self.video}: {exc}") from exc
            os.replace(partial, self.video)
            log.debug("wrote %s (%d frames, %s)", self.video, writer.frames, writer.codec)


class NullSink:
    """Pipeline stage that only ends the chain (benchmarks)."""

    name = "sink"

    def start(self) -> None:
        pass

    def process(self, frame: Frame) -> Frame:
        return frame

    def close(self) -> None:
        pass
