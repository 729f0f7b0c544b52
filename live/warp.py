"""The geometric channel's warp: move a rendered face's points to their targets, smoothly, inside the face oval.

A backward map built from a thin-plate spline through the control points (at each target, the offset back to
where that point is in the render) times a falloff that is 1 inside the face oval and reaches 0 at the oval, so
hair, ears and background are never touched. Applied with OpenCV's remap (bilinear, the map clamped into the
image: no pixel is ever taken from outside it).

`backward_map_exact` evaluates the spline at every pixel (the reference); `box_map` evaluates it on a coarse grid
over the face's box and interpolates (the fast path, checked against the reference in tests/test_warp.py), and
`warp_face` resamples only that box.
"""

from __future__ import annotations

import cv2
import numpy as np

GRID = 32  # coarse grid side over the face's box (fast path; 48: 4.2 ms, 32: 1.8 ms, max 0.31 px from the exact map)
REGULARISE = 1e-3  # thin-plate smoothing (pixels²: 0 interpolates the controls exactly)


def _kernel(r2: np.ndarray) -> np.ndarray:
    """Thin-plate radial function U(r) = r² log r², from squared distances."""
    return r2 * np.log(np.maximum(r2, np.float32(1e-12)))


def tps_fit(controls: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights [N,2], affine [3,2]) of the thin-plate spline through controls [N,2] taking values [N,2]."""
    n = len(controls)
    k = _kernel(((controls[:, None] - controls[None]) ** 2).sum(-1)) + REGULARISE * np.eye(n)
    p = np.hstack([np.ones((n, 1)), controls])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
    b = np.zeros((n + 3, 2))
    b[:n] = values
    sol = np.linalg.solve(a, b)
    return sol[:n], sol[n:]


def tps_eval(controls: np.ndarray, weights: np.ndarray, affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """[M,2] the spline at points [M,2] (float32 inside: the kernel is the cost)."""
    p, c = points.astype(np.float32), controls.astype(np.float32)
    r2 = np.square(p[:, None, 0] - c[None, :, 0]) + np.square(p[:, None, 1] - c[None, :, 1])
    u = _kernel(r2)
    return u @ weights.astype(np.float32) + affine[0] + p @ affine[1:].astype(np.float32)


def falloff(oval: np.ndarray, shape: tuple[int, int], width: float, scale: float = 1.0) -> np.ndarray:
    """[H,W] float32: 0 outside the polygon oval [N,2] (pixels / scale), rising smoothly to 1 at `width` pixels
    inside it."""
    inside = np.zeros(shape, np.uint8)
    cv2.fillPoly(inside, [np.round(oval / scale).astype(np.int32)], 1)
    d = cv2.distanceTransform(inside, cv2.DIST_L2, 3) * scale
    t = np.clip(d / max(width, 1e-6), 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def _controls(src: np.ndarray, dst: np.ndarray, oval: np.ndarray,
              held: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Controls at the targets (offset back to the source), at every other oval point (no offset: the falloff
    holds the whole oval still; half its points keep the spline from drifting outwards at half the fitting cost) and
    at the `held` points [K,2] (no offset: they stay where the render has them)."""
    anchors = oval[::2] if held is None else np.vstack([oval[::2], held])
    return np.vstack([dst, anchors]), np.vstack([src - dst, np.zeros_like(anchors)])


def backward_map_exact(src: np.ndarray, dst: np.ndarray, oval: np.ndarray, size: int, width: float,
                       held: np.ndarray | None = None) -> np.ndarray:
    """[S,S,2] float32: for each output pixel, where to sample the render (the spline at every pixel)."""
    c, v = _controls(src, dst, oval, held)
    w, a = tps_fit(c, v)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    pts = np.stack([xs.ravel(), ys.ravel()], 1)
    off = tps_eval(c, w, a, pts).reshape(size, size, 2) * falloff(oval, (size, size), width)[..., None]
    return np.clip(np.stack([xs, ys], -1) + off, 0, size - 1).astype(np.float32)


def box_map(src: np.ndarray, dst: np.ndarray, oval: np.ndarray, size: int, width: float,
            held: np.ndarray | None = None) -> tuple[int, int, np.ndarray] | None:
    """(x0, y0, map [h,w,2]): backward_map_exact over the oval's box only (outside it the map is the identity), with
    the spline on a GRID² lattice bilinearly interpolated; None when the box is empty."""
    x0, y0 = np.floor(oval.min(0)).clip(0, size - 1).astype(int)
    x1, y1 = np.ceil(oval.max(0)).clip(0, size - 1).astype(int)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    c, v = _controls(src, dst, oval, held)
    w, a = tps_fit(c, v)
    nx, ny = x1 - x0 + 1, y1 - y0 + 1
    # lattice nodes where cv2.resize (pixel-centre aligned) reads them back: node j at pixel (j + 0.5) n/GRID - 0.5
    gx = x0 + (np.arange(GRID) + 0.5) * nx / GRID - 0.5
    gy = y0 + (np.arange(GRID) + 0.5) * ny / GRID - 0.5
    lattice = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    coarse = tps_eval(c, w, a, lattice).reshape(GRID, GRID, 2).astype(np.float32)
    off = cv2.resize(coarse, (nx, ny), interpolation=cv2.INTER_LINEAR)
    off *= falloff(oval - [x0, y0], (ny, nx), width)[..., None]
    ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.float32)
    off[..., 0] += xs
    off[..., 1] += ys
    return x0, y0, np.clip(off, 0, size - 1, out=off)


def backward_map(src: np.ndarray, dst: np.ndarray, oval: np.ndarray, size: int, width: float,
                 held: np.ndarray | None = None) -> np.ndarray:
    """[S,S,2] float32: box_map spread over the whole image (the identity outside the box)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    full = np.stack([xs, ys], -1)
    box = box_map(src, dst, oval, size, width, held)
    if box is not None:
        x0, y0, m = box
        full[y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = m
    return full


def warp_face(image: np.ndarray, src: np.ndarray, dst: np.ndarray, oval: np.ndarray, width: float,
              held: np.ndarray | None = None) -> np.ndarray:
    """[S,S,3] uint8: `image` with its points src [N,2] moved to dst, the warp fading to nothing at the oval [M,2]
    (width: pixels of the fade) and the `held` points [K,2] kept where they are; only the oval's box is resampled
    (the per-frame path)."""
    box = box_map(src, dst, oval, image.shape[0], width, held)
    if box is None:
        return image
    x0, y0, m = box
    out = image.copy()
    out[y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = warp_image(image, m)
    return out


def warp_image(image: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """[h,w,3] uint8: image sampled at backward [h,w,2] (bilinear; the whole image or a box of it)."""
    return cv2.remap(image, backward[..., 0], backward[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def eye_opening(points: np.ndarray, corners: tuple[int, int], upper: tuple[int, ...],
                lower: tuple[int, ...]) -> np.ndarray:
    """[N,2] the eye's opening as a polygon: one corner, the upper lid, the other corner, the lower lid back."""
    order = (corners[0], *upper, corners[1], *reversed(lower))
    return points[list(order), :2]


def slide_eye(image: np.ndarray, opening: np.ndarray, corners: np.ndarray, shift: np.ndarray, taper: float = 0.25,
                oversample: int = 4) -> np.ndarray:
    """[S,S,3] uint8: `image` with what shows inside the eye's opening (polygon [N,2]; corners [2,2]: the eye's two
    corners) moved by shift [2] pixels, as an eyeball turns under still lids: the
    gaze. A smooth spline cannot do it (the lids an iris radius away stay where they are, so the iris would be
    sheared, not moved: MediaPipe saw 1 px of 3 asked). The shift is whole in the opening's middle and tapers to
    nothing over `taper` of the corner-to-corner length at each corner; outside the opening nothing changes, its
    edge is anti-aliased (drawn `oversample` times finer)."""
    if not np.any(shift):
        return image
    h, w = image.shape[:2]
    pad = int(np.ceil(np.abs(shift).max())) + 2
    x0, y0 = np.maximum(np.floor(opening.min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(opening.max(0)).astype(int) + pad, [w - 1, h - 1])
    if x1 <= x0 or y1 <= y0:
        return image
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    fine = np.zeros((bh * oversample, bw * oversample), np.uint8)
    poly = np.round((opening - [x0, y0] + 0.5) * oversample - 0.5).astype(np.int32)
    cv2.fillPoly(fine, [poly], 255, lineType=cv2.LINE_AA)
    mask = cv2.resize(fine, (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    if not mask.any():
        return image
    a, b = corners
    ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.float32)
    axis = b - a
    u = ((xs - a[0]) * axis[0] + (ys - a[1]) * axis[1]) / max(float(axis @ axis), 1e-9)
    t = np.clip(np.minimum(u, 1 - u) / max(taper, 1e-6), 0, 1)
    weight = (t * t * (3 - 2 * t)).astype(np.float32)
    box = image[y0:y1 + 1, x0:x1 + 1]
    moved = cv2.remap(image, xs - weight * np.float32(shift[0]), ys - weight * np.float32(shift[1]),
                      cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = image.copy()
    out[y0:y1 + 1, x0:x1 + 1] = (box + mask[..., None] * (moved.astype(np.float32) - box) + 0.5).astype(np.uint8)
    return out
