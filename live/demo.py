"""The embedded demo: a scripted driving sequence (blendshape and pose keyframes) instead of a camera.

`ScriptedSource` is a `Source` whose frames already carry a `Face` (the signals the tracker would have
produced), so `live demo` runs encoder -> synthesis -> file on a machine with no camera and no files.
"""

from __future__ import annotations

import time

import numpy as np

from live.frames import BLENDSHAPE_NAMES, NUM_LANDMARKS, Face, Frame

# (seconds, {blendshape: value}, (yaw, pitch, roll)); values are linearly interpolated between keys.
KEYFRAMES: tuple[tuple[float, dict[str, float], tuple[float, float, float]], ...] = (
    (0.0, {}, (0, 0, 0)),
    (0.6, {}, (0, 0, 0)),
    (1.2, {"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9, "cheekSquintLeft": 0.4, "cheekSquintRight": 0.4},
     (0, 0, 0)),
    (1.8, {}, (0, 0, 0)),
    (2.0, {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}, (0, 0, 0)),
    (2.2, {}, (0, 0, 0)),
    (2.8, {"jawOpen": 0.7, "mouthLowerDownLeft": 0.4, "mouthLowerDownRight": 0.4}, (0, 0, 0)),
    (3.4, {}, (0, 0, 0)),
    (4.0, {"browInnerUp": 0.9, "browOuterUpLeft": 0.7, "browOuterUpRight": 0.7}, (0, 0, 0)),
    (4.6, {}, (0, 0, 0)),
    (5.2, {}, (-20, 0, 0)),
    (6.0, {}, (20, 0, 0)),
    (6.6, {}, (0, 0, 0)),
    (7.0, {}, (0, 12, 0)),
    (7.4, {}, (0, -12, 0)),
    (7.8, {}, (0, 0, 0)),
)


def scripted_signals(t: float) -> tuple[np.ndarray, tuple[float, float, float]]:
    """(blendshapes [52], (yaw, pitch, roll)) at time t, interpolated between KEYFRAMES."""
    keys = KEYFRAMES
    t = min(max(t, keys[0][0]), keys[-1][0])
    i = max(j for j in range(len(keys)) if keys[j][0] <= t)
    j = min(i + 1, len(keys) - 1)
    (t0, b0, p0), (t1, b1, p1) = keys[i], keys[j]
    a = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
    blend = np.zeros(len(BLENDSHAPE_NAMES), np.float32)
    for name in set(b0) | set(b1):
        blend[BLENDSHAPE_NAMES.index(name)] = (1 - a) * b0.get(name, 0.0) + a * b1.get(name, 0.0)
    pose = tuple(float((1 - a) * x0 + a * x1) for x0, x1 in zip(p0, p1, strict=True))
    return blend, pose


def duration_s() -> float:
    return KEYFRAMES[-1][0]


class ScriptedSource:
    """Frames carrying scripted faces (no pixels worth looking at: a small grey image)."""

    name = "script"

    def __init__(self, fps: float = 25.0, seconds: float | None = None):
        # fps: frames per second of the sequence; seconds: its length (default: the keyframes' length).
        self.fps = fps
        self.frames = int(round((seconds or duration_s()) * fps)) + 1
        self.kind = "script"
        self.truncated = False
        self._i = 0
        self._image = np.full((64, 64, 3), 127, np.uint8)

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def read(self) -> Frame | None:
        if self._i >= self.frames:
            return None
        t = self._i / self.fps
        blend, (yaw, pitch, roll) = scripted_signals(t)
        face = Face(landmarks=np.zeros((NUM_LANDMARKS, 3), np.float32), blendshapes=blend, yaw=yaw, pitch=pitch,
                    roll=roll, translation=(0.0, 0.0, -50.0), matrix=np.eye(4, dtype=np.float32))
        frame = Frame(seq=self._i, t_capture_ns=time.perf_counter_ns(), t_media_s=t, image=self._image,
                      face=face, tracked=True)
        self._i += 1
        return frame
