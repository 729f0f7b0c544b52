"""Face regions from MediaPipe's 478 landmarks, as soft masks: where an expression is allowed to change
the image when its direction is distilled (live.train.calibrate_encoder)."""

from __future__ import annotations

import cv2
import numpy as np

from live import mesh

# Landmark indices of the MediaPipe face mesh: live.mesh's (the regions are convex hulls: order does not matter),
# and the outer lip contour.
LIPS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
OVAL = list(mesh.FACE_OVAL)
EYES = (list(mesh.LEFT_EYE), list(mesh.RIGHT_EYE))
BROWS = (list(mesh.LEFT_BROW), list(mesh.RIGHT_BROW))
NOSE_BOTTOM, CHEEK_LEFT, CHEEK_RIGHT = 2, 234, 454
KINDS = ("mouth", "eyes", "brows")


def _hull(points: np.ndarray, dilate: int, size: int) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    if dilate:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1,) * 2))
    return m


def region_mask(kind: str, landmarks: list[np.ndarray], size: int) -> np.ndarray:
    """[size,size] float32 soft mask of a region, the union over the given landmark sets ([478,2] pixels):
    "mouth" = the face below the nose (lips, cheeks, chin), "eyes" = both eyes with their brows,
    "brows" = both brows and the forehead above them."""
    if kind not in KINDS:
        raise ValueError(f"unknown region {kind!r}; known: {', '.join(KINDS)}")
    scale = size / 256.0
    mask = np.zeros((size, size), np.uint8)
    for lm in landmarks:
        if kind == "mouth":
            oval, nose_y = lm[OVAL], lm[NOSE_BOTTOM, 1] - 4 * scale
            pts = np.concatenate([oval[oval[:, 1] > nose_y], lm[LIPS],
                                  [[lm[CHEEK_LEFT, 0], nose_y], [lm[CHEEK_RIGHT, 0], nose_y]]])
            parts = [_hull(pts, round(10 * scale), size)]
        elif kind == "eyes":
            parts = [_hull(lm[eye + brow], round(5 * scale), size) for eye, brow in zip(EYES, BROWS, strict=True)]
        else:
            parts = [_hull(np.concatenate([lm[brow], lm[brow] - [0, 25 * scale]]), round(6 * scale), size)
                     for brow in BROWS]
        for part in parts:
            mask = np.maximum(mask, part)
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 3 * scale)
