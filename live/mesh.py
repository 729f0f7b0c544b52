"""MediaPipe's face mesh: named landmark regions and the rigid alignment that takes head pose out of it.

The index sets are MediaPipe's own (`FaceLandmarksConnections`, the points of each connection set), written
out so that importing them costs nothing; tests/test_warp.py checks them against MediaPipe's. Landmarks here
are pixels: `to_pixels` turns a `Face`'s normalised [478,3] into x, y in pixels and z at the x scale.
"""

from __future__ import annotations

import numpy as np

LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269, 270,
        291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_BROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
RIGHT_BROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
LEFT_IRIS = (473, 474, 475, 476, 477)  # 473: the centre (not in MediaPipe's connections)
RIGHT_IRIS = (468, 469, 470, 471, 472)  # 468: the centre
# The face oval in order around the face, from the top of the forehead (10) towards the image's right.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
             149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
# Inner lip pairs (upper, lower) across the mouth opening, from the right corner to the left.
INNER_LIP_PAIRS = ((191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402), (310, 318), (415, 324))
# Eyelid pairs (upper, lower) across each eye's opening, from corner to corner (each eye's corners excluded).
RIGHT_LID_PAIRS = ((161, 163), (160, 144), (159, 145), (158, 153), (157, 154))
LEFT_LID_PAIRS = ((388, 390), (387, 373), (386, 374), (385, 380), (384, 381))
RIGHT_UPPER_LID = (246, 161, 160, 159, 158, 157, 173)  # corner to corner, the corners excluded
LEFT_UPPER_LID = (466, 388, 387, 386, 385, 384, 398)
RIGHT_LOWER_LID = (7, 163, 144, 145, 153, 154, 155)
LEFT_LOWER_LID = (249, 390, 373, 374, 380, 381, 382)
# Each eye: its corners (the first beside the upper and lower lids' first points), upper lid, lower lid, iris
# (centre first): the opening is the polygon corner, upper lid, other corner, lower lid back.
EYE_PARTS = (((33, 133), RIGHT_UPPER_LID, RIGHT_LOWER_LID, RIGHT_IRIS),
             ((263, 362), LEFT_UPPER_LID, LEFT_LOWER_LID, LEFT_IRIS))
# The lower lip, outer and inner, without the mouth corners.
LOWER_LIP = (146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324)
# Points an expression hardly moves: forehead, nose bridge and tip, eye corners, temples. Head pose is the
# similarity that carries these from one frame's mesh onto another's.
STABLE = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 2, 98, 327, 33, 133, 362, 263, 127, 356, 234, 454)
MOUTH = LIPS
EYES = LEFT_EYE + RIGHT_EYE
# Points the warp holds where the render has them (between the moved features and the oval): the nose (bridge, tip,
# wings), the cheeks beside it and the front of the chin. Without them the spline drags the nose with the lips.
HELD = (6, 168, 197, 195, 5, 4, 1, 2, 98, 327, 129, 358, 50, 280, 101, 330, 205, 425, 199, 175)


def to_pixels(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """[478,3] float64 pixels (z at the x scale, as MediaPipe reports it) from a Face's normalised landmarks."""
    return np.asarray(landmarks, np.float64) * np.array([width, height, width], np.float64)


def interocular(points: np.ndarray) -> float:
    """Distance between the two eyes' centres (mean of each eye's ring), in the points' units."""
    return float(np.linalg.norm(points[list(LEFT_EYE), :2].mean(0) - points[list(RIGHT_EYE), :2].mean(0)))


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(scale s, rotation R [D,D], translation t [D]) minimising |s R src + t - dst|² over the rows (Umeyama 1991):
    src, dst [N,D]."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.ones(len(sig))
    d[-1] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    rot = u @ np.diag(d) @ vt
    var = (a ** 2).sum() / len(src)
    s = float((sig * d).sum() / var) if var > 0 else 1.0
    return s, rot, mu_d - s * rot @ mu_s


def align_to(points: np.ndarray, reference: np.ndarray, idx: tuple[int, ...] = STABLE) -> np.ndarray:
    """points [478,3] carried by the similarity that best maps their `idx` rows onto `reference`'s: the same face
    with the head pose (and distance to the camera) of `reference`."""
    s, rot, t = similarity(points[list(idx)], reference[list(idx)])
    return (s * (rot @ points.T)).T + t
