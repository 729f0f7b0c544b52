"""The embedded demo: a scripted driving sequence (blendshape and pose keyframes) instead of a camera.

`ScriptedSource` is a `Source` whose frames already carry a `Face` (the signals the tracker would have
produced), so `live demo` runs encoder -> synthesis -> warp -> file on a machine with no camera and no files.
Its face mesh (for the warp, which moves the avatar's points as the driver's move) is a real face at rest
(live/models/demo_mesh.json) with its lips and lids moved for the script's pout, lip press and squint
(`scripted_mesh`): the movements the generator's latent cannot draw.
"""

from __future__ import annotations

import time

import numpy as np

from live import mesh
from live.frames import BLENDSHAPE_NAMES, Face, Frame
from live.models.demo_mesh import load_demo_mesh

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
    (8.4, {"mouthPucker": 0.9, "mouthFunnel": 0.3}, (0, 0, 0)),  # pout
    (9.0, {}, (0, 0, 0)),
    (9.6, {"mouthPressLeft": 0.8, "mouthPressRight": 0.8, "mouthRollLower": 0.3, "mouthRollUpper": 0.3},
     (0, 0, 0)),  # lip press
    (10.2, {}, (0, 0, 0)),
    (10.8, {"eyeSquintLeft": 0.8, "eyeSquintRight": 0.8, "cheekSquintLeft": 0.3, "cheekSquintRight": 0.3},
     (0, 0, 0)),  # squint
    (11.4, {}, (0, 0, 0)),
)
PUCKER_IN = 0.3  # a full pucker draws the lips this share of the way in to the mouth's centre, across...
PUCKER_DOWN = 0.1  # ...and this share up and down
PRESS_THIN = 0.45  # a full lip press takes this share of each lip point's distance to the lips' meeting line off
SQUINT_LOWER = 0.35  # a full squint raises the lower lid by this share of the eye's opening...
SQUINT_UPPER = 0.1  # ...and lowers the upper lid by this share


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


def _value(blend: np.ndarray, *names: str) -> float:
    return float(np.mean([blend[BLENDSHAPE_NAMES.index(n)] for n in names]))


def scripted_mesh(neutral: np.ndarray, blend: np.ndarray) -> np.ndarray:
    """[478,2+] pixels: the `neutral` face's points ([478,2+] pixels) with its lips and lids moved as the blendshapes
    `blend` ([52]) say for a pucker, a lip press and a squint; the other movements are left to the signals."""
    points = np.array(neutral, np.float64)
    lips = list(mesh.LIPS)
    pucker, press = _value(blend, "mouthPucker"), _value(blend, "mouthPressLeft", "mouthPressRight")
    if pucker or press:
        centre = points[lips, :2].mean(0)
        meet = np.mean([(points[up, 1] + points[lo, 1]) / 2 for up, lo in mesh.INNER_LIP_PAIRS])
        points[lips, 0] = centre[0] + (1 - PUCKER_IN * pucker) * (points[lips, 0] - centre[0])
        points[lips, 1] = centre[1] + (1 - PUCKER_DOWN * pucker) * (points[lips, 1] - centre[1])
        points[lips, 1] = meet + (1 - PRESS_THIN * press) * (points[lips, 1] - meet)
    for pairs, side in ((mesh.RIGHT_LID_PAIRS, "Right"), (mesh.LEFT_LID_PAIRS, "Left")):
        squint = _value(blend, f"eyeSquint{side}")
        if squint:
            for up, lo in pairs:
                opening = points[lo, 1] - points[up, 1]
                points[lo, 1] -= SQUINT_LOWER * squint * opening
                points[up, 1] += SQUINT_UPPER * squint * opening
    return points


class ScriptedSource:
    """Frames carrying scripted faces (no pixels worth looking at: a small grey image)."""

    name = "script"

    def __init__(self, fps: float = 25.0, seconds: float | None = None):
        # fps: frames per second of the sequence; seconds: its length (default: the keyframes' length).
        self.fps = fps
        self.frames = round((seconds or duration_s()) * fps) + 1
        self.kind = "script"
        self.truncated = False
        self._i = 0
        landmarks, (w, h) = load_demo_mesh()
        self._size = (w, h)
        self._neutral = mesh.to_pixels(landmarks, w, h)
        self._image = np.full((h // 8, w // 8, 3), 127, np.uint8)  # the mesh's aspect: the warp reads pixels by it

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def read(self) -> Frame | None:
        if self._i >= self.frames:
            return None
        t = self._i / self.fps
        blend, (yaw, pitch, roll) = scripted_signals(t)
        w, h = self._size
        landmarks = (scripted_mesh(self._neutral, blend) / np.array([w, h, w])).astype(np.float32)
        face = Face(landmarks=landmarks, blendshapes=blend, yaw=yaw, pitch=pitch, roll=roll,
                    translation=(0.0, 0.0, -50.0), matrix=np.eye(4, dtype=np.float32))
        frame = Frame(seq=self._i, t_capture_ns=time.perf_counter_ns(), t_media_s=t, image=self._image,
                      face=face, tracked=True)
        self._i += 1
        return frame
