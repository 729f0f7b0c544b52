"""What the avatar fit (or the calibration) measured of how one avatar responds: a typed, frozen record that
training and fitting write and the per-frame encoder only reads.

Layouts (J expressions, K offset layers, P/Q points of a piecewise-linear table):
    matrix      [55, K*512]  the linear map; its yaw and pitch rows move the head
    directions  [J, K, 512]  one offset per expression
    readout     [J, 55]      how the driver's signals make each expression's asked change
    curve_x/y   [J, P]       response curve: asked change (increasing) -> coefficient, flat beyond its ends
Every optional group is None when the encoder was made without it.

On disk (format FORMAT_VERSION; live/models/encoder_calibrated.safetensors, the avatar fits): the arrays as
safetensors under the names `tensors()` gives, and beside them PATH.json whose "expressions",
"expression_scale" and "identity_budget" are read into the record (the rest is the calibration's and the fit's
report, read by nothing at run time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from live.models.encoder import NUM_SIGNALS

FORMAT_VERSION = 1
# The governor's yield order (benchmarks/QUALITY.md, "identity governor", has the measurements): the brows are given
# up first (MediaPipe sees them least on avatars, and a lowered brow cost identity 2 its jaw), and the others are
# scaled by s ** power, the blink keeping more (it is brief).
YIELDS_FIRST = ("brows",)
YIELD_POWER = {"blink": 0.25}


@dataclass(frozen=True)
class Governor:
    """The identity budget: a frame whose estimated identity distance passes `frame_budget` has its expressions
    scaled down (those in `yields_first` first, to zero if need be; then each by s ** yield_power)."""

    frame_budget: float  # largest estimated dlib distance of a frame
    cost_c: np.ndarray  # [J,Q] coefficients (increasing, through 0) where each expression's cost was measured
    cost_id: np.ndarray  # [J,Q] identity distance measured there
    pose_cost: np.ndarray  # [2] distance per degree of yaw and pitch (used when there is no table)
    pose_cost_x: np.ndarray | None  # [2,P] degrees of yaw and pitch (increasing, through 0), or None
    pose_cost_y: np.ndarray | None  # [2,P] identity distance measured there
    pose_share: float | None  # the head may take at most this share of the budget (None: no cap)
    yields_first: np.ndarray  # [J] bool: expressions given up first
    yield_power: np.ndarray  # [J] the power of s each other expression is scaled by

    @classmethod
    def of(cls, names: tuple[str, ...], frame_budget: float, cost_c: np.ndarray, cost_id: np.ndarray,
           pose_cost: np.ndarray, pose_share: float | None = None, pose_cost_x: np.ndarray | None = None,
           pose_cost_y: np.ndarray | None = None) -> Governor:
        """A governor for expressions `names`, yielding in the order YIELDS_FIRST / YIELD_POWER say."""
        return cls(float(frame_budget), cost_c, cost_id, pose_cost, pose_cost_x, pose_cost_y, pose_share,
                   np.array([n in YIELDS_FIRST for n in names]), np.array([YIELD_POWER.get(n, 1.0) for n in names]))

    def __post_init__(self):
        j = len(self.cost_c)
        if self.cost_c.ndim != 2 or self.cost_id.shape != self.cost_c.shape or self.pose_cost.shape != (2,) \
                or self.yields_first.shape != (j,) or self.yield_power.shape != (j,):
            raise ValueError("an identity governor needs cost_c/cost_id [J,Q], pose_cost [2] and yields [J]")
        if self.pose_share is not None and not 0 < self.pose_share <= 1:
            raise ValueError(f"pose_share must be in (0, 1], got {self.pose_share}")
        if (self.pose_cost_x is None) != (self.pose_cost_y is None) or self.pose_cost_x is not None and (
                self.pose_cost_x.ndim != 2 or self.pose_cost_x.shape[0] != 2
                or self.pose_cost_y.shape != self.pose_cost_x.shape or np.any(np.diff(self.pose_cost_x, axis=1) <= 0)):
            raise ValueError("a head-angle cost table needs pose_cost_x [2,P] (increasing) and pose_cost_y [2,P]")


@dataclass(frozen=True)
class CrossTalk:
    """What each expression's direction does to the others' asked signals (taken off what is asked)."""

    c: np.ndarray  # [J,Q] coefficients
    x: np.ndarray  # [J,Q,J] change of each expression's asked signal that direction j makes there

    def __post_init__(self):
        if self.c.ndim != 2 or self.x.shape != (*self.c.shape, self.c.shape[0]):
            raise ValueError(f"cross-talk tables need c [J,Q] and x [J,Q,J], got {list(self.c.shape)} and "
                             f"{list(self.x.shape)}")


@dataclass(frozen=True)
class ConditionedCurve:
    """Expression `j`'s curve measured again at coefficients `c` of expression `i`, interpolated between."""

    j: int
    i: int
    c: np.ndarray  # [L] coefficients of i (increasing, from 0)
    x: np.ndarray  # [L,P] asked change at each level (row 0: j's own curve)
    y: np.ndarray  # [L,P] coefficient

    def __post_init__(self):
        if self.c.ndim != 1 or self.x.shape != self.y.shape or self.x.shape[0] != len(self.c) or self.c[0] != 0 \
                or np.any(np.diff(self.c) <= 0) or np.any(np.diff(self.x, axis=1) <= 0) or self.i == self.j:
            raise ValueError("a conditioned curve needs two expressions (j, i), c [L] increasing from 0 and x/y "
                             "[L,P] (x increasing)")


@dataclass(frozen=True)
class PoseCrossTalk:
    """What the avatar's own head turn does to each expression's asked signal."""

    x: np.ndarray  # [2,P] degrees of yaw and pitch asked (increasing, through 0)
    y: np.ndarray  # [2,P,J] change of each expression's asked signal there

    def __post_init__(self):
        if self.x.ndim != 2 or self.x.shape[0] != 2 or self.y.shape[:2] != self.x.shape \
                or np.any(np.diff(self.x, axis=1) <= 0):
            raise ValueError("head-turn cross-talk needs x [2,P] (increasing) and y [2,P,J]")


@dataclass(frozen=True)
class ExpressionTurn:
    """The head turn each expression's direction makes on the avatar (taken off the head's rows)."""

    c: np.ndarray  # [J,Q] coefficients (increasing, from 0)
    y: np.ndarray  # [J,Q,2] degrees of yaw and pitch the avatar shows there

    def __post_init__(self):
        if self.c.ndim != 2 or self.y.shape != (*self.c.shape, 2) or np.any(np.diff(self.c, axis=1) < 0):
            raise ValueError(f"expression head-turn tables need c [J,Q] (increasing) and y [J,Q,2], got "
                             f"{list(self.c.shape)} and {list(self.y.shape)}")


@dataclass(frozen=True)
class AvatarResponse:
    names: tuple[str, ...]  # the expressions, e.g. ("jaw", "smile", "blink", "brows")
    k: int  # leading style layers the offset covers
    matrix: np.ndarray  # [55,K*512] float32
    directions: np.ndarray  # [J,K,512] float32
    readout: np.ndarray  # [J,55] float32
    curve_x: np.ndarray  # [J,P] float32
    curve_y: np.ndarray  # [J,P] float32
    scales: np.ndarray  # [J] float32: asked changes show at this scale of the driver's
    governor: Governor | None
    cross: CrossTalk | None
    conditioned: ConditionedCurve | None
    pose_cross: PoseCrossTalk | None
    identity_budget: float = 0.5  # largest identity distance (dlib) a response curve may reach
    expression_turn: ExpressionTurn | None = None

    def __post_init__(self):
        j, k = len(self.names), self.k
        if self.matrix.shape != (NUM_SIGNALS, k * 512) or self.directions.shape != (j, k, 512) \
                or self.readout.shape != (j, NUM_SIGNALS) or self.curve_x.shape != self.curve_y.shape \
                or self.curve_x.shape[0] != j or np.any(np.diff(self.curve_x, axis=1) <= 0) \
                or self.scales.shape != (j,):
            raise ValueError(f"inconsistent avatar response: matrix {list(self.matrix.shape)}, directions "
                             f"{list(self.directions.shape)}, readout {list(self.readout.shape)}, curves "
                             f"{list(self.curve_x.shape)}/{list(self.curve_y.shape)} (x must increase), scales "
                             f"{list(self.scales.shape)}, {j} names, K={k}")
        for part, n in ((self.governor and self.governor.cost_c, 0), (self.cross and self.cross.c, 0),
                        (self.pose_cross and self.pose_cross.y, 2),
                        (self.expression_turn and self.expression_turn.c, 0)):
            if part is not None and part.shape[n] != j:
                raise ValueError(f"a measured table is for {part.shape[n]} expressions, the response has {j}")
        if self.conditioned is not None and not (0 <= self.conditioned.i < j and 0 <= self.conditioned.j < j):
            raise ValueError(f"the conditioned curve names expressions {self.conditioned.j}, {self.conditioned.i} "
                             f"of {j}")

    def tensors(self) -> dict[str, np.ndarray]:
        """The arrays as they are stored (names of format FORMAT_VERSION)."""
        t = {"matrix": self.matrix, "directions": self.directions, "readout": self.readout,
             "curve_x": self.curve_x, "curve_y": self.curve_y}
        g = self.governor
        if g is not None:
            t.update(cost_c=g.cost_c, cost_id=g.cost_id, pose_cost=g.pose_cost,
                     frame_budget=np.array([g.frame_budget], np.float32))
            if g.pose_share is not None:
                t["pose_share"] = np.array([g.pose_share], np.float32)
        if self.cross is not None:
            t.update(cross_c=self.cross.c, cross_x=self.cross.x)
        if self.pose_cross is not None:
            t.update(pose_cross_x=self.pose_cross.x, pose_cross_y=self.pose_cross.y)
        if g is not None and g.pose_cost_x is not None:
            t.update(pose_cost_x=g.pose_cost_x, pose_cost_y=g.pose_cost_y)
        if self.expression_turn is not None:
            t.update(turn_c=self.expression_turn.c, turn_y=self.expression_turn.y)
        if self.conditioned is not None:
            cc = self.conditioned
            t.update(cond_pair=np.array((cc.j, cc.i), np.int64), cond_c=cc.c, cond_x=cc.x, cond_y=cc.y)
        return t

    def meta(self) -> dict:
        """The metadata the record reads back (written beside the tensors)."""
        scale = {n: float(str(v)) for n, v in zip(self.names, self.scales, strict=True)}  # float32's shortest repr
        return {"expressions": list(self.names), "expression_scale": scale, "identity_budget": self.identity_budget}

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray], meta: dict) -> AvatarResponse:
        """The record of stored arrays and their metadata; ValueError naming what is missing or inconsistent."""
        missing = {"matrix", "directions", "readout", "curve_x", "curve_y"} - set(t)
        if missing:
            raise ValueError(f"not an avatar response: no {', '.join(sorted(missing))}")
        names = tuple(meta.get("expressions") or (f"expression{i}" for i in range(len(t["directions"]))))
        scale = meta.get("expression_scale") or {}
        scales = np.array([float(scale.get(n, 1.0)) for n in names], np.float32)
        f32 = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in t.items()}
        governor = None
        if "frame_budget" in t:
            if not {"cost_c", "cost_id", "pose_cost"} <= set(t):
                raise ValueError("an identity frame budget needs cost_c/cost_id [J,Q] and pose_cost [2]")
            governor = Governor.of(names, float(t["frame_budget"][0]), t["cost_c"], t["cost_id"], t["pose_cost"],
                                   float(t["pose_share"][0]) if "pose_share" in t else None, t.get("pose_cost_x"),
                                   t.get("pose_cost_y"))
        elif "pose_share" in t:
            raise ValueError("pose_share needs an identity frame budget")
        return cls(names, int(t["matrix"].shape[1] // 512), f32["matrix"], f32["directions"], f32["readout"],
                   f32["curve_x"], f32["curve_y"], scales, governor,
                   _group(CrossTalk, t, "cross_c", "cross_x"),
                   ConditionedCurve(int(t["cond_pair"][0]), int(t["cond_pair"][1]), t["cond_c"], t["cond_x"],
                                    t["cond_y"]) if "cond_pair" in t else None,
                   _group(PoseCrossTalk, t, "pose_cross_x", "pose_cross_y"),
                   float(meta.get("identity_budget", 0.5)), _group(ExpressionTurn, t, "turn_c", "turn_y"))


def _group(kind, t: dict[str, np.ndarray], a: str, b: str):
    """kind(t[a], t[b]), None when neither is stored; ValueError when only one is."""
    if (a in t) != (b in t):
        raise ValueError(f"{a} and {b} come together: one is missing")
    return kind(t[a], t[b]) if a in t else None
