"""FFHQ-style face alignment from MediaPipe landmarks.

The FFHQ dataset (Karras et al., 2019) aligns faces by a square oriented along the eye line and sized
from the eye-to-eye and eye-to-mouth distances; StyleGAN generators produce faces in exactly that frame.
The same recipe is computed here from MediaPipe's 478 landmarks instead of dlib's 68, so a crop made
with `ffhq_align` can be inverted into the generator (enrollment) and pasted back (inverse matrix).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# MediaPipe FaceMesh eye contours. "Image-left" is the person's right eye.
EYE_IMAGE_LEFT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_IMAGE_RIGHT = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
MOUTH_CORNER_IMAGE_LEFT = 61
MOUTH_CORNER_IMAGE_RIGHT = 291


@dataclass(frozen=True)
class Alignment:
    """An aligned crop and the transforms between it and the source image."""

    image: np.ndarray  # [S,S,3] uint8, same channel order as the input
    matrix: np.ndarray  # [2,3] float64 affine: source pixel (x, y, 1) -> crop pixel
    inverse: np.ndarray  # [2,3] float64 affine: crop pixel -> source pixel (for pasting back)
    quad: np.ndarray  # [4,2] float64 source-pixel corners: top-left, bottom-left, bottom-right, top-right


def ffhq_quad(points: np.ndarray) -> np.ndarray:
    """The FFHQ crop square in source pixels from landmarks in pixels ([478,2+]).

    Returns the corners top-left, bottom-left, bottom-right, top-right (FFHQ's `quad`).
    """
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    eye_left = pts[list(EYE_IMAGE_LEFT)].mean(axis=0)
    eye_right = pts[list(EYE_IMAGE_RIGHT)].mean(axis=0)
    mouth_avg = (pts[MOUTH_CORNER_IMAGE_LEFT] + pts[MOUTH_CORNER_IMAGE_RIGHT]) * 0.5
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = mouth_avg - eye_avg
    # Oriented crop rectangle, as in FFHQ's recreate_aligned_images().
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def ffhq_align(image: np.ndarray, landmarks: np.ndarray, size: int = 1024) -> Alignment:
    """Crop `image` ([H,W,3] uint8) to the FFHQ frame at `size`x`size`.

    landmarks: [478,2+] as the tracking stage gives them (x, y normalised to [0,1]). Outside the image
    the crop is filled by reflection, as FFHQ pads.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"ffhq_align needs an [H,W,3] image, got shape {image.shape}")
    if landmarks.shape[0] < 468:
        raise ValueError(f"ffhq_align needs MediaPipe's 468/478 landmarks, got {landmarks.shape[0]}")
    h, w = image.shape[:2]
    pixels = np.asarray(landmarks, dtype=np.float64)[:, :2] * [w, h]
    quad = ffhq_quad(pixels)
    dst = np.array([[0, 0], [0, size], [size, size]], dtype=np.float64)
    matrix = cv2.getAffineTransform(quad[:3].astype(np.float32), dst.astype(np.float32)).astype(np.float64)
    # Shrinking a lot in one warp aliases: pre-blur in proportion to the scale (what FFHQ's shrink step does).
    scale = np.hypot(*(quad[3] - quad[0])) / size
    src = image
    if scale > 2.0:
        src = cv2.GaussianBlur(image, (0, 0), sigmaX=0.5 * scale)
    crop = cv2.warpAffine(src, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    inverse = cv2.invertAffineTransform(matrix)
    return Alignment(image=crop, matrix=matrix, inverse=inverse, quad=quad)
