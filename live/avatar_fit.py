"""The calibrated encoder fitted to one avatar: its own response curves, cross-talk and identity costs.

The calibrated encoder (`python -m live.train.calibrate_encoder`) maps what the driver asks to coefficients along
its expression directions through response curves, and scales a frame's expressions down when their estimated
identity cost, together with the head pose's, would take the avatar too far from itself. Curves and costs are means
over 16 calibration faces, and faces differ: a face that already smiles cannot smile much more, another's jaw stays
shut until coefficient 0.7 and then opens fast, a third's brows do not move at all; on the benchmark's two
identities the worst frame reached dlib distance 0.605 under the mean costs, 0.509 under their own (same budget).
`fit_to_avatar` measures the avatar itself: its expression directions at the calibration's coefficients and the head
angles at +-2, 4, 8 and 16 degrees, rendered at 256², tracked by MediaPipe and described by dlib, and the smile on
the jaw opened to 0.5, 1.0 and 1.5 (tracked only; ~118 renders, ~25 s on 2 cores). From those it makes the avatar's
own curves (same identity budget and expression scales), the smile's curve at each of those jaw openings (an opening
jaw changes a smile's reading, and the two do not add up), the cross-talk the blink and brows make on the smile and
the head's yaw and pitch on the smile, blink and jaw (taken off what is asked), the head turn each expression's
direction makes (taken off the head's rows: on s12 an opening jaw turned it 2-6 degrees; pitch only past a real
jaw's), its head-angle gains (the yaw and pitch rows are divided by how far this face turns per degree asked:
0.73-1.22 on identities 0-3) and the governor's costs (each head angle's as a table in degrees: dlib's distance is
concave in the angle).
`live.avatar_fit_cache.AvatarFits` caches the result per (encoder, identity), so it happens once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np

from live.encoder import Encoder
from live.encoder.response import (
    AvatarResponse,
    ConditionedCurve,
    CrossTalk,
    ExpressionTurn,
    PoseCrossTalk,
)
from live.models.curves import MIN_REACH, cost_points, pad_points, response_curve
from live.models.encoder import NUM_SIGNALS, POSE_ANGLES, POSE_SCALE, SIGNAL_INDEX

log = logging.getLogger(__name__)

POSE_PROBE = 16.0  # degrees of yaw and pitch the pose cost is measured at (both signs)
# Why each of these is what it is, with the measurements: benchmarks/QUALITY.md, "The avatar fit's settings".
POSE_CROSS_CORRECTED = ("smile", "blink", "jaw")  # expressions the avatar's own head turn is taken off
POSE_CROSS_HALFWAY = (0.5,)  # probes besides +-POSE_PROBE for that cross-talk, as shares of it
POSE_COST_SHARES = (0.125, 0.25, 0.5)  # probes besides +-POSE_PROBE for the head's identity cost table
POSE_SHARES = tuple(sorted({*POSE_COST_SHARES, *POSE_CROSS_HALFWAY}))  # every head probe besides +-POSE_PROBE
CROSS_CORRECTED = ("smile",)  # expressions the other directions' cross-talk is taken off
CONDITIONED = {"smile": "jaw"}  # expression: the other it is measured again on top of, at CONDITION_LEVELS
CONDITION_LEVELS = (0.5, 1.0, 1.5)  # coefficients of the other expression (the jaw: 0.5-1.2 when talking)
POSE_GAIN_RANGE = (0.7, 1.4)  # the avatar's own head-angle gain is taken off within this range...
POSE_GAIN_TRUSTED = 0.4  # ...and not at all when it measures under this
# An expression's own head turn is taken off whole in yaw; in pitch, only what passes what MediaPipe reads on a real
# opening jaw, which the driver's pitch already carries: degrees per unit of jawOpen, the median of the per-clip
# slopes on the 9 shared driving clips (2.2-8.8 on those whose jaw moves much; pooled 4.4).
REAL_JAW_PITCH = 3.2
FIT_VERSION = 14  # part of the cache key: bump when fit_to_avatar measures differently
# Fits kept in the cache (~1.1 MB each), the most recently used: older ones (fits for earlier encoder versions,
# avatars not driven for long) are deleted when a new fit is written; a deleted fit is simply measured again.
KEEP_FITS = 64

# Reads the avatar rendered at an offset: (offset [1,K,512] float32, describe) -> (dlib descriptor [128] or None,
# MediaPipe signals [55] or None) (None where dlib / MediaPipe find no face, and the descriptor when describe is
# False: the conditioned curves need the signals only, and dlib is a fifth of the fit's time). RenderedAvatar is
# the real one; the tests' fake avatars are functions.
ReadOffset = Callable[[np.ndarray, bool], tuple[np.ndarray | None, np.ndarray | None]]


def fit_to_avatar(enc: Encoder, read: ReadOffset,
                  progress: Callable[[int, int], None] | None = None) -> Encoder | None:
    """`enc` with the response curves, cross-talk and identity costs of its expressions and the identity costs
    of its head angles measured on this avatar (directions and budget unchanged); None if dlib cannot find
    the avatar's neutral face. Without a tracked neutral face only the costs are the avatar's."""
    r, g = enc.response, enc.response.governor
    if g is None:
        raise ValueError("this encoder has no identity governor to fit (calibrate it with --frame-budget > 0)")
    k = enc.k
    grid = [[float(c) for c in row if c != 0] for row in g.cost_c]
    pairs = [(enc.names.index(j), enc.names.index(i)) for j, i in CONDITIONED.items()
             if j in enc.names and i in enc.names][:1]  # the encoder takes one conditioned curve
    neutral, neutral_sig = read(np.zeros((1, k, 512), np.float32), True)
    if neutral is None:
        return None
    extra = sum(len(CONDITION_LEVELS) * (len(grid[j]) + 1) for j, _ in pairs) if neutral_sig is not None else 0
    extra += 4 * len(POSE_SHARES)
    total, done = 1 + sum(len(g) for g in grid) + 4 + extra, 1
    if progress:
        progress(done, total)

    def step(offset: np.ndarray, describe: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
        nonlocal done
        got = read(offset.reshape(1, k, 512).astype(np.float32), describe)
        done += 1
        if progress:
            progress(done, total)
        return got

    def distance_and_signals(offset: np.ndarray) -> tuple[float, np.ndarray]:
        """(identity distance, [55] change of the tracked signals), NaN where not found."""
        desc, sig = step(offset)
        dist = float("nan") if desc is None else float(np.linalg.norm(desc - neutral))
        change = sig - neutral_sig if sig is not None and neutral_sig is not None else \
            np.full(NUM_SIGNALS, np.nan, np.float32)
        return dist, change

    def signal_change(offset: np.ndarray) -> np.ndarray:
        """[J] change of each expression's readout (no descriptor), NaN where not found."""
        _, sig = step(offset, describe=False)
        return r.readout @ (sig - neutral_sig) if sig is not None else np.full(len(enc.names), np.nan)

    tracked = [[distance_and_signals(c * d) for c in g] for g, d in zip(grid, r.directions, strict=True)]
    found = [[(dist, r.readout @ change) for dist, change in f] for f in tracked]  # [J] readout changes
    tables = [cost_points(g, [dist for dist, _ in f]) for g, f in zip(grid, found, strict=True)]
    matrix, pose_cost, pose_gain, turned, pose_table = r.matrix.copy(), [], [], [], []
    for j, name in enumerate(("yaw", "pitch")):
        i = SIGNAL_INDEX[name]
        probes = [(sign, *distance_and_signals(r.matrix[i] * (sign * POSE_PROBE / POSE_SCALE))) for sign in (1, -1)]
        dist = [d for _, d, _ in probes if np.isfinite(d)]
        gain = pose_gain_of([change[i] * POSE_SCALE / (sign * POSE_PROBE) for sign, _, change in probes])
        matrix[i] /= gain  # asked degrees show as degrees on this avatar
        pose_gain.append(gain)
        pose_cost.append(max(dist) / POSE_PROBE / gain if dist else float(g.pose_cost[j]))
        near = [(share, sign * share * POSE_PROBE,
                 *distance_and_signals(r.matrix[i] * (sign * share * POSE_PROBE / POSE_SCALE)))
                for share in POSE_SHARES for sign in (1, -1)]  # (share, degrees, distance, signal change)
        costs = [(d, c) for share, d, c, _ in near if share in POSE_COST_SHARES]
        pose_table.append(cost_table([(sign * POSE_PROBE, d) for sign, d, _ in probes] + costs, gain,
                                     float(g.pose_cost[j])))
        if neutral_sig is not None:
            made = [(sign * POSE_PROBE, r.readout @ change) for sign, _, change in probes]
            made += [(d, r.readout @ change) for share, d, _, change in near if share in POSE_CROSS_HALFWAY]
            turned.append([(d * gain, m) for d, m in made])  # at the degrees asked of the corrected row
    cost_c, cost_id = pad_points([c for c, _ in tables], [d for _, d in tables])
    pose_cost_x, pose_cost_y = pad_points([x for x, _ in pose_table], [y for _, y in pose_table])
    fitted = {"version": FIT_VERSION, "pose_cost_per_deg": [round(p, 4) for p in pose_cost],
              "pose_gain_corrected": [round(g, 3) for g in pose_gain],
              "pose_cost_table": {a: [[round(float(d), 2), round(float(c), 3)] for d, c in zip(x, y, strict=True)]
                                  for a, x, y in zip(("yaw", "pitch"), pose_cost_x, pose_cost_y, strict=True)},
              "expression_cost_at_ends": {n: [round(float(d[0]), 3), round(float(d[-1]), 3)]
                                          for n, (_, d) in zip(enc.names, tables, strict=True)}}
    curve_x, curve_y, cross_c, cross_x, cond, turn = r.curve_x, r.curve_y, None, None, {}, None
    if neutral_sig is not None:
        curve_x, curve_y, cross_c, cross_x = own_curves(r, grid, found, tables)
        for j, i in pairs:
            changes = [[signal_change(r.directions[i] * level + r.directions[j] * c)[j]
                        for c in [0.0, *grid[j]]] for level in CONDITION_LEVELS]
            cond = conditioned_curves(r, j, grid[j], changes, tables[j], curve_x[j], curve_y[j])
            if cond:
                cross_x[i, :, j] = 0.0  # in the conditioned curves now
                cond["cond_pair"] = (j, i)
                fitted["conditioned"] = {enc.names[j]: {enc.names[i]: [round(float(c), 3) for c in cond["cond_c"]]}}
        cond.update(pose_cross(r, turned))
        turn = expression_turn(r, grid, tracked)
        fitted["expression_turn_at_ends"] = {n: [round(float(v), 2) for v in turn.y[j, -1]]
                                             for j, n in enumerate(enc.names)}  # {expression: [yaw, pitch]}
        fitted["pose_cross_at_ends"] = {  # {expression: {angle: [at the lowest, at the highest degrees]}}
            n: {a: [round(float(y[0, j]), 3), round(float(y[-1, j]), 3)]
                for a, y in zip(("yaw", "pitch"), cond["pose_cross_y"], strict=True)}
            for j, n in enumerate(enc.names) if n in POSE_CROSS_CORRECTED}
        fitted["reach_asked"] = {n: [round(float(x[0]), 3), round(float(x[-1]), 3)]
                                 for n, x in zip(enc.names, curve_x, strict=True)}
        still = [n for n, y in zip(enc.names, curve_y, strict=True) if not np.any(y)]
        if still:
            log.info("on this avatar MediaPipe sees too little of: %s (under %.2f at any coefficient within the "
                     "identity budget): left still", ", ".join(still), MIN_REACH)
        fitted["left_still"] = still
    else:
        log.warning("MediaPipe does not find the avatar's neutral face: it is driven by the calibration faces' "
                    "mean response curves")
    governor = dataclasses.replace(g, cost_c=cost_c, cost_id=cost_id, pose_cost=np.array(pose_cost, np.float32),
                                   pose_cost_x=pose_cost_x, pose_cost_y=pose_cost_y)
    fit = dataclasses.replace(
        r, matrix=matrix.astype(np.float32), curve_x=curve_x.astype(np.float32), curve_y=curve_y.astype(np.float32),
        governor=governor, cross=CrossTalk(cross_c, cross_x) if cross_x is not None else None,
        conditioned=ConditionedCurve(*cond["cond_pair"], cond["cond_c"], cond["cond_x"], cond["cond_y"])
        if "cond_pair" in cond else None,
        pose_cross=PoseCrossTalk(cond["pose_cross_x"], cond["pose_cross_y"]) if "pose_cross_x" in cond else None,
        expression_turn=turn)
    return Encoder(fit, {**enc.meta, "fitted_to_avatar": fitted})


def cost_table(probes: list[tuple[float, float]], gain: float, per_degree: float) -> tuple[np.ndarray, np.ndarray]:
    """A head angle's identity cost table (degrees asked of the gain-corrected row, increasing through 0; distance)
    from (degrees asked of the encoder's row, measured distance) probes, those dlib lost left out (all lost: the
    encoder's cost `per_degree`, at +-POSE_PROBE); past the outermost probe each way the cost goes on growing at
    that probe's distance per degree, to 4x its angle."""
    pts = [(d * gain, c) for d, c in probes if np.isfinite(c)] or [(sign * POSE_PROBE, per_degree * POSE_PROBE)
                                                                   for sign in (1, -1)]
    pts = sorted([(0.0, 0.0), *pts])
    if pts[0][0] < 0:
        pts.insert(0, (4 * pts[0][0], 4 * pts[0][1]))
    if pts[-1][0] > 0:
        pts.append((4 * pts[-1][0], 4 * pts[-1][1]))
    return np.array([d for d, _ in pts], np.float32), np.array([c for _, c in pts], np.float32)


def from_origin(points: list[tuple[float, np.ndarray]], width: int) -> tuple[np.ndarray, np.ndarray]:
    """(x [Q], y [Q,width]) of measured points (x, [width] value) with the origin (0, zeros) added, in order of x:
    a table for pad_points."""
    pts = sorted([(0.0, np.zeros(width)), *points], key=lambda p: p[0])
    return np.array([x for x, _ in pts]), np.stack([v for _, v in pts])


def pose_cross(r: AvatarResponse, turned: list[list[tuple[float, np.ndarray]]]) -> dict:
    """pose_cross_x [2,P] / pose_cross_y [2,P,J] from the readout changes [J] measured at degrees asked of the yaw
    and pitch rows (`turned`, per angle); only POSE_CROSS_CORRECTED expressions' columns are kept, probes where
    the tracker lost the face are left out. Divided by the expression scales (asked changes show at that scale,
    the turn's own must be cancelled whole), as the expressions' cross-talk is."""
    keep = np.array([n in POSE_CROSS_CORRECTED for n in r.names])
    scales = r.scales
    xs, ys = [], []
    for probes in turned:
        degrees, change = from_origin([(d, np.where(keep, m / scales, 0.0)) for d, m in probes
                                       if np.all(np.isfinite(m))], len(r.names))
        xs.append(degrees)
        ys.append(change)
    x, y = pad_points(xs, ys)  # where the face was lost at a probe, that angle's table is shorter: padded flat
    return {"pose_cross_x": x, "pose_cross_y": y}


def expression_turn(r: AvatarResponse, grid: list[list[float]],
                    tracked: list[list[tuple[float, np.ndarray]]]) -> ExpressionTurn:
    """The head turn each expression direction makes: degrees of yaw and pitch MediaPipe reads on the avatar at
    each coefficient of `grid` (`tracked`: (distance, [55] signal change) there), probes where the face was lost
    left out (pitch: less what a real opening jaw reads, see own_turn). On s12 the jaw turned the head 2-6 degrees
    of yaw, more once tuning opened the jaw wider; on s1 it raised it 2-3 degrees past the driver's."""
    cs, ys = [], []
    for g, f in zip(grid, tracked, strict=True):
        turns = [(c, own_turn(change)) for c, (_, change) in zip(g, f, strict=True)]
        at, shown = from_origin([(c, t) for c, t in turns if np.all(np.isfinite(t))], 2)
        cs.append(at)
        ys.append(shown)
    c, y = pad_points(cs, ys)
    return ExpressionTurn(c, y)


def own_turn(change: np.ndarray) -> np.ndarray:
    """[2] degrees of yaw and pitch of a tracked signal change [55] that are the avatar's own doing: the pitch past
    what a real opening jaw reads, none where the avatar's jaw reads less than that (taking the difference off there
    would add pitch the avatar never made: pooled pitch ratio tuned 0.263 -> 0.258, untuned 0.252 -> 0.255)."""
    yaw, pitch = change[POSE_ANGLES] * POSE_SCALE
    real = REAL_JAW_PITCH * change[SIGNAL_INDEX["jawOpen"]]
    return np.array([yaw, pitch - np.clip(real, min(0.0, pitch), max(0.0, pitch))])


def pose_gain_of(gains: list[float]) -> float:
    """The gain to take off a head-angle row from its measured gains at +-POSE_PROBE (shown / asked degrees):
    their mean, within POSE_GAIN_RANGE; 1 when MediaPipe lost the head or saw it barely turn (not to be
    trusted: boosting such a row would spend identity on a turn nobody sees)."""
    ok = [g for g in gains if np.isfinite(g)]
    if not ok or np.mean(ok) < POSE_GAIN_TRUSTED:
        return 1.0
    return float(np.clip(np.mean(ok), *POSE_GAIN_RANGE))


def own_curves(r: AvatarResponse, grid: list[list[float]], found: list[list[tuple[float, np.ndarray]]],
               tables: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """The avatar's response curves (asked -> coefficient, as the calibration makes them: its identity budget
    and expression scales) and cross-talk tables (coefficient -> [J] asked change) from its measurements."""
    scales = r.scales
    xs, ys, cs, made = [], [], [], []
    for j, (g, f, table) in enumerate(zip(grid, found, tables, strict=True)):
        x, y = avatar_curve(r, j, g, [float(change[j]) for _, change in f], table)
        xs.append(x)
        ys.append(y)
        at, asked = from_origin([(c, change / scales) for c, (_, change) in zip(g, f, strict=True)
                                 if np.all(np.isfinite(change))], len(r.names))
        cs.append(at)
        made.append(asked)
    curve_x, curve_y = pad_points(xs, ys)
    cross_c, cross_x = pad_points(cs, made)
    cross_x[:, :, [n not in CROSS_CORRECTED for n in r.names]] = 0.0
    return curve_x, curve_y, cross_c, cross_x


def avatar_curve(r: AvatarResponse, j: int, coefficients: list[float], got: list[float],
                 table: tuple[np.ndarray, np.ndarray], start: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Expression j's response curve (asked -> coefficient) from its readout `got` at `coefficients` on this
    avatar, made as the calibration makes it (its identity budget with j's own costs `table`, its expression
    scale); `start`: the readout where the curve starts (coefficient 0), e.g. on an open jaw."""
    tc, td = table
    rows = [{"c": c, "got": g - start, "identity": float(np.interp(c, tc, td))}
            for c, g in zip(coefficients, got, strict=True)]
    x, y = response_curve(rows, r.identity_budget)
    return (x + start) / float(r.scales[j]), y


def conditioned_curves(r: AvatarResponse, j: int, grid: list[float], changes: list[list[float]],
                       table: tuple[np.ndarray, np.ndarray], x0: np.ndarray, y0: np.ndarray) -> dict:
    """cond_c/cond_x/cond_y for expression j: its own curve (x0, y0) at level 0, then at each CONDITION_LEVELS
    the curve of its measured readout changes there (changes[level] at coefficients [0, *grid], against the
    neutral face), made like its own (identity budget and cost of j alone, expression scale); {} when the
    tracker lost the face at every level."""
    levels, xs, ys = [0.0], [x0], [y0]
    for level, got in zip(CONDITION_LEVELS, changes, strict=True):
        if not np.isfinite(got[0]):
            continue
        x, y = avatar_curve(r, j, grid, got[1:], table, start=got[0])
        levels.append(level)
        xs.append(x)
        ys.append(y)
    if len(levels) == 1:
        return {}
    cond_x, cond_y = pad_points(xs, ys)
    return {"cond_c": np.array(levels, np.float32), "cond_x": cond_x, "cond_y": cond_y}


class RenderedAvatar:
    """A ReadOffset through a SynthesisNet (offset -> image) and a live.probe.FaceReader (MediaPipe, dlib)."""

    def __init__(self, net, reader):
        self.net, self.reader = net, reader

    def __call__(self, offset: np.ndarray, describe: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
        import torch

        from live.render import to_uint8

        with torch.no_grad():
            rgb = to_uint8(self.net(torch.from_numpy(offset)).numpy())
        signals, _ = self.reader.track(rgb)
        return self.reader.describe(rgb) if describe else None, signals

    def close(self) -> None:
        self.reader.close()
