"""Face regions from MediaPipe's 478 landmarks, as soft masks: where an expression is allowed to change
the image when its direction is distilled (live.train.calibrate_encoder)."""

from __future__ import annotations

import cv2
import numpy as np

# Landmark indices of the MediaPipe face mesh (the canonical FACEMESH_* contours).
LIPS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
        149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
EYES = ([263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398],
        [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173])
BROWS = ([276, 283, 282, 295, 285, 300, 293, 334, 296, 336], [46, 53, 52, 65, 55, 70, 63, 105, 66, 107])
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
