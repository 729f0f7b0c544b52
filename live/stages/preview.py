"""Preview window sink (`live run --preview`): the avatar on screen, and keys for the live controls.

Keys: g / G expression gain -/+ 0.1, p / P pose gain -/+ 0.1, e / E emotion sad/happy -/+ 0.5, w / W warp -/+ 0.25,
f freeze on/off, r re-centre (your current face becomes neutral), q or Esc stop.
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np

from live.controls import EMOTION_RANGE, GAIN_RANGE, Controls
from live.frames import Frame

log = logging.getLogger(__name__)

KEYS_HELP = ("keys: g/G expression gain, p/P pose gain, e/E emotion sad/happy, w/W warp strength, f freeze, r re-centre, "
             "q/Esc stop")
WINDOW = "live preview"
MAX_HEIGHT = 540  # the window shows [camera | avatar] at most this tall


def apply_key(controls: Controls, key: str) -> str | None:
    """Change `controls` for one key press; returns what changed ("stop" to quit), None if not a key of ours."""
    def step(name: str, delta: float, lo: float, hi: float) -> str:
        value = round(min(hi, max(lo, getattr(controls, name) + delta)), 2)
        controls.update(**{name: value})
        return f"{name} {value:g}"

    table = {"g": ("expression_gain", -0.1, *GAIN_RANGE), "G": ("expression_gain", 0.1, *GAIN_RANGE),
             "p": ("pose_gain", -0.1, *GAIN_RANGE), "P": ("pose_gain", 0.1, *GAIN_RANGE),
             "e": ("emotion", -0.5, *EMOTION_RANGE), "E": ("emotion", 0.5, *EMOTION_RANGE),
             "w": ("warp_strength", -0.25, *GAIN_RANGE), "W": ("warp_strength", 0.25, *GAIN_RANGE)}
    if key in table:
        return step(*table[key])
    if key == "f":
        controls.update(freeze=not controls.freeze)
        return f"freeze {'on' if controls.freeze else 'off'}"
    if key == "r":
        controls.recentre()
        return "re-centre"
    if key in ("q", "\x1b"):
        return "stop"
    return None


def has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def require_display() -> None:
    """Raise ValueError with what to do instead when there is no screen to show a window on."""
    if not has_display():
        raise ValueError("--preview needs a display (DISPLAY/WAYLAND_DISPLAY is not set); write a file with -o "
                         "instead, or use `live serve` and a browser")


class PreviewSink:
    """Pipeline stage: shows [driver | avatar] and turns key presses into control changes."""

    name = "preview"

    def __init__(self, controls: Controls, on_stop=None):
        # controls: shared with the encoder stage; on_stop: called when q/Esc is pressed.
        self.controls = controls
        self.on_stop = on_stop
        self._cv2 = None

    def start(self) -> None:
        require_display()
        import cv2

        try:
            cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise ValueError(f"--preview cannot open a window ({exc}); this OpenCV build may lack a GUI") from None
        self._cv2 = cv2
        log.warning(KEYS_HELP)

    def process(self, frame: Frame) -> Frame:
        cv2 = self._cv2
        if frame.output is not None:
            side = min(frame.output.shape[0], MAX_HEIGHT)  # a 1280x720 frame beside the camera: shown smaller
            out = frame.output if side == frame.output.shape[0] else cv2.resize(
                frame.output, (round(frame.output.shape[1] * side / frame.output.shape[0]), side),
                interpolation=cv2.INTER_AREA)
            drv = cv2.resize(frame.image, (round(frame.image.shape[1] * side / frame.image.shape[0]), side))
            shown = np.hstack([drv, out])
        else:
            shown = frame.image
        cv2.imshow(WINDOW, cv2.cvtColor(shown, cv2.COLOR_RGB2BGR))
        code = cv2.waitKey(1)
        if code >= 0:
            change = apply_key(self.controls, chr(code & 0xFF))
            if change == "stop" and self.on_stop is not None:
                self.on_stop()
            elif change:
                log.warning("%s", change)
        return frame

    def close(self) -> None:
        if self._cv2 is not None:
            self._cv2.destroyWindow(WINDOW)
            self._cv2 = None
