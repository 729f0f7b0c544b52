"""Measured response tables of the calibrated encoder: coefficient -> identity cost, asked change ->
coefficient. Shared by the calibration (mean over its faces) and the avatar fit (one avatar)."""

from __future__ import annotations

import numpy as np

MIN_REACH = 0.05  # a side of a curve that cannot move its signal this far is left out (coefficient 0)
# A larger coefficient that adds less than this is a flat step (saturated there): left out of the curve, which goes
# on to the next coefficient that moves its signal further (identity 3's smile on the open jaw: -0.018 at 1.0,
# -0.008 at 1.5, +0.031 at 2.0; going on past it: identities 2,3 smile ratio 0.691 -> 0.643, 0,1 unchanged).
MIN_STEP = 0.01
# Coefficients whose tracked change stays under this are not points of a curve: the curve runs straight from
# (0, 0) to the first coefficient that moves its signal more. Such a dead zone (identity 1's jaw reads +0.002 at
# coefficient 0.25 and +0.036 at 0.7) made a driver's tracker noise (jawOpen +0.005) ask for coefficient 0.35, which
# MediaPipe does not see on the mouth but does see elsewhere (identity 1's left eye opens by 0.05) and dlib too.
DEAD_ZONE = 0.02


def cost_points(coefficients: list[float], distances: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients, identity distance) through (0, 0), never falling away from 0 (for the governor);
    NaN distances (no face found) are left out."""
    pts = sorted([(0.0, 0.0)] + [(c, d) for c, d in zip(coefficients, distances, strict=True)
                                 if np.isfinite(d) and c != 0])
    c = np.array([x for x, _ in pts], np.float32)
    d = np.array([y for _, y in pts], np.float32)
    zero = int(np.flatnonzero(c == 0)[0])
    d[zero:] = np.maximum.accumulate(d[zero:])
    d[:zero + 1] = np.maximum.accumulate(d[:zero + 1][::-1])[::-1]
    return c, d


def response_curve(rows: list[dict], budget: float) -> tuple[np.ndarray, np.ndarray]:
    """Monotone asked -> coefficient points from response rows ({"c", "got", "identity"} per coefficient):
    each side starts at the first coefficient that moves the signal past DEAD_ZONE, leaves out flat steps
    (under MIN_STEP), stops where the identity distance passes the budget, and is dropped if it cannot reach
    MIN_REACH (such a side would spend identity on tracker noise, e.g. a jaw "more closed" than closed). Only
    (0, 0) is left when neither side reaches."""
    xs, ys = [0.0], [0.0]
    for sign in (1, -1):
        side, best, last = [], 0.0, {"c": 0.0, "got": 0.0, "identity": 0.0}
        for r in sorted((r for r in rows if np.sign(r["c"]) == sign), key=lambda r: abs(r["c"])):
            if not np.isfinite(r["got"]):
                break
            if not r["identity"] <= budget:  # end exactly at the budget, between the last point and this one
                f = (budget - last["identity"]) / max(r["identity"] - last["identity"], 1e-9)
                r = {"c": last["c"] + f * (r["c"] - last["c"]), "got": last["got"] + f * (r["got"] - last["got"])}
                if sign * r["got"] > best + MIN_STEP:
                    best = sign * r["got"]
                    side.append((r["got"], r["c"]))
                break
            last = r
            if sign * r["got"] > max(best + 1e-3, DEAD_ZONE - 1e-6):  # keep only points that reach further
                if best >= MIN_REACH and sign * r["got"] < best + MIN_STEP:  # a flat step: look further
                    continue
                best = sign * r["got"]
                side.append((r["got"], r["c"]))
        if best >= MIN_REACH:
            xs += [x for x, _ in side]
            ys += [y for _, y in side]
    order = np.argsort(xs)
    return np.array(xs, np.float32)[order], np.array(ys, np.float32)[order]


def pad_points(xs: list[np.ndarray], ys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-linear tables of different lengths (x increasing; y a value [P] or a row [P,J] per point)
    stacked into [N,P] and [N,P(,J)] float32, each padded past its end with flat points, which change nothing
    under interpolation. A table of one point (0, 0) becomes (0, 0), (1e-3, 0): flat zero."""
    width = max(len(x) for x in xs + [np.zeros(2)])
    px = np.stack([np.concatenate([x, x[-1] + 1e-3 * np.arange(1, width - len(x) + 1)]) for x in xs])
    py = np.stack([np.concatenate([y, np.repeat(np.asarray(y)[-1:], width - len(y), axis=0)]) for y in ys])
    return px.astype(np.float32), py.astype(np.float32)
