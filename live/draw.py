"""Drawing the tracking result onto a frame: landmarks, a head-pose axis and a text readout."""

from __future__ import annotations

import math

import cv2
import numpy as np

from live.frames import Frame

GREEN = (60, 220, 90)
WHITE = (255, 255, 255)
NOSE_TIP = 1


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float) -> None:
    """White text on a dark box (an outline drawn with a thicker pen does not line up in OpenCV 5)."""
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    cv2.rectangle(img, (x - 3, y - h - 4), (x + w + 3, y + base + 2), (20, 20, 20), -1)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, WHITE, 1, cv2.LINE_AA)


def annotate(frame: Frame) -> np.ndarray:
    """A copy of the frame's RGB image with the face drawn on it (or 'no face')."""
    img = frame.image.copy()  # [H,W,3] uint8 RGB
    h, w = img.shape[:2]
    scale = max(0.4, min(w, h) / 900)
    line1, line2 = int(30 * scale) + 8, int(30 * scale) + 8 + int(40 * scale) + 6
    face = frame.face
    if face is None:
        _text(img, f"#{frame.seq} no face", (8, line1), scale)
        return img
    pts = np.round(face.landmarks[:, :2] * [w, h]).astype(np.int32)
    radius = max(1, round(min(w, h) / 400))
    for x, y in pts:
        cv2.circle(img, (int(x), int(y)), radius, GREEN, -1, cv2.LINE_AA)
    # Head-pose axes from the nose tip: red = face x (right), green = up, blue = forward (towards camera).
    yaw, pitch, roll = map(math.radians, (face.yaw, face.pitch, face.roll))
    axes = _rotation(yaw, pitch, roll)
    length = 0.25 * float(np.ptp(pts[:, 0]))
    origin = tuple(int(v) for v in pts[NOSE_TIP])
    for axis, colour in zip(axes.T, ((230, 40, 40), (40, 230, 40), (40, 90, 255))):
        end = (int(origin[0] + length * axis[0]), int(origin[1] - length * axis[1]))
        cv2.line(img, origin, end, colour, max(1, radius + 1), cv2.LINE_AA)
    _text(img, f"#{frame.seq} yaw {face.yaw:+5.1f} pitch {face.pitch:+5.1f} roll {face.roll:+5.1f}",
          (8, line1), scale)
    smile = (face.blendshape("mouthSmileLeft") + face.blendshape("mouthSmileRight")) / 2
    blink = (face.blendshape("eyeBlinkLeft") + face.blendshape("eyeBlinkRight")) / 2
    _text(img, f"jaw {face.blendshape('jawOpen'):.2f} smile {smile:.2f} blink {blink:.2f}",
          (8, line2), scale)
    return img


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation (x right, y up, z towards the viewer) for the pose convention of the tracking stage."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])  # chin up (pitch > 0) tilts forward upwards
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry @ rx
