"""The encoder's per-frame steps, one small function each, on an `AvatarResponse` (numpy, no state).

Signal vectors are [55]: 52 blendshapes, then yaw, pitch, roll / POSE_SCALE. Expression vectors are [J].
"""

from __future__ import annotations

import numpy as np

from live.encoder.response import AvatarResponse, Governor
from live.models.encoder import POSE_ANGLES, POSE_SCALE

POSE_BISECTION_STEPS = 16  # the head's share within its cap, to 2^-16
GOVERNOR_BISECTION_STEPS = 12  # the expressions' share within the frame budget, to 2^-12
CROSS_TALK_STEPS = 2  # fixed-point steps taking the other directions' cross-talk off what is asked


def pose_cost_sq(delta: np.ndarray, g: Governor) -> float:
    """Squared estimated identity distance of the head's yaw and pitch in `delta` [55]."""
    degrees = delta[POSE_ANGLES] * POSE_SCALE
    if g.pose_cost_x is not None:
        return float(sum(np.interp(d, x, y) ** 2 for d, x, y in zip(degrees, g.pose_cost_x, g.pose_cost_y,
                                                                      strict=True)))
    return float(np.sum((g.pose_cost * degrees) ** 2))


def limit_pose(delta: np.ndarray, g: Governor | None) -> np.ndarray:
    """delta [55] with yaw and pitch scaled down to cost at most the head's share of the frame budget."""
    delta = np.asarray(delta, np.float32)
    if g is None or g.pose_share is None:
        return delta
    cost = float(np.sqrt(pose_cost_sq(delta, g)))
    cap = g.pose_share * g.frame_budget
    if cost <= cap:
        return delta
    limited = delta.copy()
    if g.pose_cost_x is None:  # linear in the angles
        limited[POSE_ANGLES] *= cap / cost
        return limited
    lo, hi = 0.0, 1.0  # a measured table: the largest share of the angles within the cap
    for _ in range(POSE_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        limited[POSE_ANGLES] = delta[POSE_ANGLES] * mid
        lo, hi = (mid, hi) if pose_cost_sq(limited, g) <= cap * cap else (lo, mid)
    limited[POSE_ANGLES] = delta[POSE_ANGLES] * lo
    return limited


def head_cross_talk(delta: np.ndarray, r: AvatarResponse) -> np.ndarray:
    """[J] asked-signal change the avatar's own yaw and pitch in `delta` make (flat past the probed angles)."""
    degrees = delta[POSE_ANGLES] * POSE_SCALE
    p = r.pose_cross
    return np.array([sum(np.interp(d, x, y[:, j]) for d, x, y in zip(degrees, p.x, p.y, strict=True))
                     for j in range(len(r.names))], np.float32)


def coefficients(asked: np.ndarray, r: AvatarResponse) -> np.ndarray:
    """[J] coefficient of each direction for what is asked [J], through the response curves (one of them
    interpolated between its curves at another expression's coefficient, where measured so)."""
    c = np.array([np.interp(a, x, y) for a, x, y in zip(asked, r.curve_x, r.curve_y, strict=True)], np.float32)
    if r.conditioned is not None:
        cc = r.conditioned
        at = [np.interp(asked[cc.j], x, y) for x, y in zip(cc.x, cc.y, strict=True)]
        c[cc.j] = np.interp(c[cc.i], cc.c, at)
    return c


def cross_talk(c: np.ndarray, r: AvatarResponse) -> np.ndarray:
    """[J] asked-signal change each expression gets from the other expressions' directions at coefficients c."""
    j = len(c)
    made = np.array([[np.interp(c[a], r.cross.c[a], r.cross.x[a, :, b]) for b in range(j)] for a in range(j)])
    return made.sum(0) - np.diag(made)


def expression_asks(delta: np.ndarray, r: AvatarResponse) -> np.ndarray:
    """[J] what the driver's change [55] asks of each expression, less what the avatar's head turn and the other
    directions will show of it anyway."""
    asked = r.readout @ delta
    if r.pose_cross is not None:
        asked = asked - head_cross_talk(delta, r)
    if r.cross is not None:
        shown = asked
        for _ in range(CROSS_TALK_STEPS):
            shown = asked - cross_talk(coefficients(shown, r), r)
        asked = shown
    return asked


def identity_cost(c: np.ndarray, pose_sq: float, g: Governor) -> float:
    """Estimated identity distance of coefficients c [J] on top of a head's squared cost."""
    each = [np.interp(v, x, y) for v, x, y in zip(c, g.cost_c, g.cost_id, strict=True)]
    return float(np.sqrt(pose_sq + np.sum(np.square(each))))


def largest_share(scaled, pose_sq: float, r: AvatarResponse) -> float:
    """The largest s in [0, 1] whose coefficients of scaled(s) [J] meet the frame budget (bisection). What is asked
    is scaled, not the coefficients: curves can have a dead zone near 0."""
    lo, hi = 0.0, 1.0
    for _ in range(GOVERNOR_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        ok = identity_cost(coefficients(scaled(mid), r), pose_sq, r.governor) <= r.governor.frame_budget
        lo, hi = (mid, hi) if ok else (lo, mid)
    return lo


def govern(asked: np.ndarray, pose_sq: float, r: AvatarResponse) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients [J], kept [J]): the share of each expression's ask kept within the identity budget (1 where
    the governor did not act) and the coefficients of what is kept."""
    c, kept, g = coefficients(asked, r), np.ones(len(asked)), r.governor
    if g is None or identity_cost(c, pose_sq, g) <= g.frame_budget:
        return c, kept
    first = g.yields_first
    if first.any() and identity_cost(coefficients(np.where(first, 0.0, asked), r), pose_sq, g) <= g.frame_budget:
        s = largest_share(lambda s: np.where(first, s, 1.0) * asked, pose_sq, r)
        kept = np.where(first, s, 1.0)
    else:
        power = g.yield_power
        s = largest_share(lambda s: np.where(first, 0.0, s ** power) * asked, pose_sq, r)
        kept = np.where(first, 0.0, s ** power)
    return coefficients(kept * asked, r), kept


def expression_turn(c: np.ndarray, r: AvatarResponse) -> np.ndarray:
    """[2] degrees of yaw and pitch the expressions at coefficients c [J] turn the avatar's head (flat past the
    measured coefficients)."""
    t = r.expression_turn
    return np.array([sum(np.interp(v, x, y[:, a]) for v, x, y in zip(c, t.c, t.y, strict=True))
                     for a in range(2)], np.float32)


def take_off_expression_turn(delta: np.ndarray, c: np.ndarray, r: AvatarResponse) -> np.ndarray:
    """delta [55] with the head turn the expressions at c [J] make taken off its yaw and pitch (the rows ask
    degrees as this avatar shows them), so an opening jaw does not turn the head."""
    if r.expression_turn is None:
        return delta
    out = np.array(delta, np.float32)
    out[POSE_ANGLES] -= expression_turn(c, r) / POSE_SCALE
    return out


def latent_offset(delta: np.ndarray, c: np.ndarray, r: AvatarResponse) -> np.ndarray:
    """[1,K,512] offset: the linear map of the change [55] (the head) plus each direction at its coefficient."""
    head = (np.asarray(delta, np.float32) @ r.matrix).reshape(1, r.k, 512)
    return head + np.tensordot(c, r.directions, axes=1)[None]
