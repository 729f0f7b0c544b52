"""Deformation encoder: driving signals -> W+ offset of the first K style layers.

Baseline (Bounareli et al., 2022): a linear map from the *change* of facial signals (52 blendshapes,
yaw/pitch/roll) to a shift of the first K style layers, fitted in closed form on generated faces
(`python -m live.train.fit_encoder`). Zero change gives a zero offset, so a still driver leaves the
avatar exactly on its identity.

Calibrated (the default, `python -m live.train.calibrate_encoder`): head pose through the linear map's
columns with measured gains, and each expression (jaw, smile, blink, brows) along one distilled
direction whose coefficient comes from a measured response curve, so the avatar's tracked change
matches the driver's where the generator can follow, and stops where identity would suffer. Its response
curves, their cross-talk and its identity governor's costs are re-measured on each avatar before it is
driven (live.avatar_fit).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from live.frames import BLENDSHAPE_NAMES, Face

WEIGHTS_PATH = Path(__file__).with_name("encoder_linear.safetensors")
META_PATH = Path(__file__).with_name("encoder_linear.json")
CALIBRATED_PATH = Path(__file__).with_name("encoder_calibrated.safetensors")
POSE_SCALE = 30.0  # degrees per unit: head angles enter the signal vector as yaw/30, pitch/30, roll/30
SIGNAL_NAMES = (*BLENDSHAPE_NAMES, "yaw", "pitch", "roll")  # the order of the signal vector
SIGNAL_INDEX = {name: i for i, name in enumerate(SIGNAL_NAMES)}
NUM_SIGNALS = len(SIGNAL_NAMES)
POSE_ANGLES = [SIGNAL_INDEX["yaw"], SIGNAL_INDEX["pitch"]]  # the head angles the identity governor costs
# Expressions the identity governor gives up first when a frame is over its budget (down to zero), before it scales
# the others: the brows are the expression MediaPipe sees least on avatars (gain 0.06 on identities 0,1) and a
# lowered brow cost identity 2 its jaw (the driver talking, the jaw's coefficient squeezed from 0.78 to 0.09).
# Measured on the 9 shared clips (benchmarks/quality.py), scaling all alike -> brows first: identities 2,3 jaw error
# ratio 0.579 -> 0.494, smiles 0.704/0.752 -> 0.663/0.704; identities 0,1 eyeBlinkRight 0.510 -> 0.492.
YIELDS_FIRST = ("brows",)
# How the others yield then: expression j's ask is scaled by s ** YIELD_POWER[j] (1 if not named) for the largest s
# that meets the budget, so a power under 1 keeps more of that expression, smoothly (none snaps to zero). The blink
# keeps more: it is brief, and the governor was scaling it on 40% of identity 0's frames (22% of its coefficient).
# Measured on the 9 shared clips, blink power 1 -> 0.5 -> 0.25: identities 0,1 eyeBlinkLeft 0.580 -> 0.561 -> 0.548,
# eyeBlinkRight 0.495 -> 0.481 -> 0.475, jaw 0.467 -> 0.475 -> 0.481; 2,3 eyeBlinkLeft 0.647 -> 0.619 -> 0.602,
# eyeBlinkRight 0.687 -> 0.685 -> 0.687, jaw 0.472 -> 0.475 -> 0.478; smiles and identity within 0.005.
YIELD_POWER = {"blink": 0.25}


def signal_vector(blendshapes: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """[..., 55] float32: the 52 blendshapes then yaw, pitch, roll / POSE_SCALE."""
    return np.concatenate([np.asarray(blendshapes, np.float32), np.asarray(pose, np.float32) / POSE_SCALE],
                          axis=-1)


def face_signals(face: Face) -> np.ndarray:
    return signal_vector(face.blendshapes, np.array([face.yaw, face.pitch, face.roll], np.float32))


class LinearEncoder:
    """offset [1,K,512] = delta_signals [55] @ A [55, K*512]."""

    def __init__(self, matrix: np.ndarray, k: int, meta: dict | None = None):
        # matrix: [55, K*512] float32; k: style layers it drives; meta: training metadata (for reports).
        if matrix.shape != (NUM_SIGNALS, k * 512):
            raise ValueError(f"encoder matrix must be [{NUM_SIGNALS},{k * 512}], got {list(matrix.shape)}")
        self.matrix, self.k, self.meta = matrix.astype(np.float32), k, meta or {}

    def __call__(self, delta: np.ndarray) -> np.ndarray:
        return (np.asarray(delta, np.float32) @ self.matrix).reshape(1, self.k, 512)

    @classmethod
    def load(cls, path: Path = WEIGHTS_PATH, generator_sha256: str | None = None) -> LinearEncoder:
        """The committed linear encoder; refuses one fitted for another generator."""
        return cls.from_tensors(*_read(path, generator_sha256, "fit_encoder"))

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray], meta: dict) -> LinearEncoder:
        return cls(t["matrix"], int(t["matrix"].shape[1] // 512), meta)

    def tensors(self) -> dict[str, np.ndarray]:
        return {"matrix": self.matrix}

    def save(self, path: Path, meta: dict) -> None:
        """Weights (safetensors, written then renamed) and PATH.json with the training metadata."""
        import os
        import tempfile

        from safetensors.torch import save_file

        fd, tmp = tempfile.mkstemp(prefix=".encoder.", dir=Path(path).parent)
        os.close(fd)
        try:
            save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.tensors().items()}, tmp,
                      metadata={"k": str(self.k)})
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        Path(path).with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


class CalibratedEncoder(LinearEncoder):
    """offset = delta @ A (head pose) + sum_j curve_j(s * delta @ readout_j) * direction_j.

    directions [J,K,512]: one offset per expression; readout [J,55]: how the driver's signals make the
    asked change of expression j (e.g. the mean of the left and right smile); curve_x/curve_y [J,P]: the
    measured response, asked change (increasing) -> coefficient along the direction, flat beyond its ends.
    Identity governor (optional): cost_c/cost_id [J,Q] the measured mean identity distance (dlib) of each
    direction at coefficients cost_c (increasing, through 0), pose_cost [2] the distance per degree of yaw
    and pitch; when their sum in quadrature passes frame_budget, every asked expression change is scaled by
    the s < 1 that meets it, so combined expressions cannot take the avatar further from its identity; the
    expressions in YIELDS_FIRST are scaled down (to zero if need be) before the others are, and those in
    YIELD_POWER by s ** power instead of s.
    Head-angle cost table (optional, avatar fit): pose_cost_x [2,P] degrees of yaw and pitch asked (increasing,
    through 0), pose_cost_y [2,P] the identity distance measured there; used instead of pose_cost, which is linear in
    the angle, where dlib's distance is not (a 1-degree turn measured 0.06-0.15, 3-5x the per-degree cost at 16).
    pose_share (optional, 0..1): the head may take at most this share of frame_budget (yaw and pitch are
    scaled down beyond it), so a strong nod or turn leaves room for the expressions instead of stilling them.
    Cross-talk (optional, measured on one avatar by live.avatar_fit): cross_c [J,Q] coefficients and cross_x
    [J,Q,J] the change of each expression's asked signal that direction j makes there (e.g. an opening jaw
    reads as less smile on a smiling face); what the other directions make is taken off what is asked.
    Conditioned curve (optional, avatar fit): cond_pair (j, i): expression j's curve is measured at the coefficients
    cond_c [L] (increasing, from 0) of expression i, cond_x/cond_y [L,P] (row 0: its own curve), and interpolated
    between them at i's coefficient; the cross-talk of i on j is in those curves, not in cross_x. Effects that do
    not add up (a smile direction that undoes an opening jaw's lowered smile) are then followed as measured.
    Head-turn cross-talk (optional, avatar fit): pose_cross_x [2,P] degrees of yaw and pitch asked (increasing,
    through 0), pose_cross_y [2,P,J] the change of each expression's asked signal the head rows make there (a
    generated face turned 16 degrees can read 0.2-0.6 less smile, where a driver's turning reads none); taken off what
    is asked, yaw's and pitch's added.
    """

    def __init__(self, matrix: np.ndarray, k: int, directions: np.ndarray, readout: np.ndarray,
                 curve_x: np.ndarray, curve_y: np.ndarray, names: list[str], meta: dict | None = None,
                 cost_c: np.ndarray | None = None, cost_id: np.ndarray | None = None,
                 pose_cost: np.ndarray | None = None, frame_budget: float | None = None,
                 cross_c: np.ndarray | None = None, cross_x: np.ndarray | None = None,
                 pose_share: float | None = None, cond_pair: tuple[int, int] | None = None,
                 cond_c: np.ndarray | None = None, cond_x: np.ndarray | None = None, cond_y: np.ndarray | None = None,
                 pose_cross_x: np.ndarray | None = None, pose_cross_y: np.ndarray | None = None,
                 pose_cost_x: np.ndarray | None = None, pose_cost_y: np.ndarray | None = None):
        super().__init__(matrix, k, meta)
        j = len(names)
        if directions.shape != (j, k, 512) or readout.shape != (j, NUM_SIGNALS) or curve_x.shape != curve_y.shape \
                or curve_x.shape[0] != j or np.any(np.diff(curve_x, axis=1) <= 0):
            raise ValueError(f"inconsistent calibrated encoder: directions {list(directions.shape)}, readout "
                             f"{list(readout.shape)}, curves {list(curve_x.shape)}/{list(curve_y.shape)} "
                             f"(x must increase), {j} names")
        if frame_budget is not None and (cost_c is None or cost_id is None or pose_cost is None
                                         or cost_c.shape != cost_id.shape or cost_c.shape[0] != j):
            raise ValueError("an identity frame budget needs cost_c/cost_id [J,Q] and pose_cost [2]")
        if (cross_c is None) != (cross_x is None) or cross_c is not None and (
                cross_c.ndim != 2 or cross_c.shape[0] != j or cross_x.shape != (*cross_c.shape, j)):
            raise ValueError(f"cross-talk tables need cross_c [J,Q] and cross_x [J,Q,J] for J={j} expressions")
        if pose_share is not None and (frame_budget is None or not 0 < pose_share <= 1):
            raise ValueError(f"pose_share must be in (0, 1] and needs a frame budget, got {pose_share}")
        if cond_pair is not None and (cond_c is None or cond_x is None or cond_y is None or cond_c.ndim != 1
                                      or cond_x.shape != cond_y.shape or cond_x.shape[0] != len(cond_c)
                                      or cond_c[0] != 0 or np.any(np.diff(cond_c) <= 0)
                                      or np.any(np.diff(cond_x, axis=1) <= 0) or len(set(cond_pair)) != 2
                                      or not all(0 <= n < j for n in cond_pair)):
            raise ValueError("a conditioned curve needs cond_pair (j, i) of two expressions, cond_c [L] increasing "
                             "from 0 and cond_x/cond_y [L,P] (x increasing)")
        if (pose_cross_x is None) != (pose_cross_y is None) or pose_cross_x is not None and (
                pose_cross_x.ndim != 2 or pose_cross_x.shape[0] != 2 or pose_cross_y.shape != (*pose_cross_x.shape, j)
                or np.any(np.diff(pose_cross_x, axis=1) <= 0)):
            raise ValueError(f"head-turn cross-talk needs pose_cross_x [2,P] (increasing) and pose_cross_y [2,P,J] "
                             f"for J={j} expressions")
        if (pose_cost_x is None) != (pose_cost_y is None) or pose_cost_x is not None and (
                pose_cost_x.ndim != 2 or pose_cost_x.shape[0] != 2 or pose_cost_y.shape != pose_cost_x.shape
                or np.any(np.diff(pose_cost_x, axis=1) <= 0)):
            raise ValueError("a head-angle cost table needs pose_cost_x [2,P] (increasing) and pose_cost_y [2,P]")
        self.pose_cross_x, self.pose_cross_y = pose_cross_x, pose_cross_y
        self.pose_cost_x, self.pose_cost_y = pose_cost_x, pose_cost_y
        self.cond_pair = None if cond_pair is None else (int(cond_pair[0]), int(cond_pair[1]))
        self.cond_c, self.cond_x, self.cond_y = cond_c, cond_x, cond_y
        self.directions, self.readout = directions.astype(np.float32), readout.astype(np.float32)
        self.curve_x, self.curve_y, self.names = curve_x.astype(np.float32), curve_y.astype(np.float32), names
        self.cost_c, self.cost_id, self.pose_cost, self.frame_budget = cost_c, cost_id, pose_cost, frame_budget
        self.cross_c, self.cross_x, self.pose_share = cross_c, cross_x, pose_share

    def with_governor(self, frame_budget: float | None = None, pose_share: float | None = None) -> CalibratedEncoder:
        """This encoder with another identity frame budget and/or head share (None: keep its own; pose_share 1:
        no cap on the head), built and checked like a loaded one."""
        if self.frame_budget is None:
            raise ValueError("this encoder has no identity governor (calibrate it with --frame-budget > 0)")
        t = self.tensors()
        if frame_budget is not None:
            t["frame_budget"] = np.array([frame_budget], np.float32)
        if pose_share == 1:
            t.pop("pose_share", None)
        elif pose_share is not None:
            t["pose_share"] = np.array([pose_share], np.float32)
        return CalibratedEncoder.from_tensors(t, self.meta)

    def limit_pose(self, delta: np.ndarray) -> np.ndarray:
        """delta [55] with yaw and pitch scaled down to cost at most pose_share of the frame budget."""
        delta = np.asarray(delta, np.float32)
        if self.pose_share is None or self.frame_budget is None:
            return delta
        cost = float(np.sqrt(self._pose_sq(delta)))
        cap = self.pose_share * self.frame_budget
        if cost <= cap:
            return delta
        limited = delta.copy()
        if self.pose_cost_x is None:  # linear in the angles
            limited[POSE_ANGLES] *= cap / cost
            return limited
        lo, hi = 0.0, 1.0  # a measured table: the largest share of the angles within the cap (bisection)
        for _ in range(16):
            mid = 0.5 * (lo + hi)
            limited[POSE_ANGLES] = delta[POSE_ANGLES] * mid
            lo, hi = (mid, hi) if self._pose_sq(limited) <= cap * cap else (lo, mid)
        limited[POSE_ANGLES] = delta[POSE_ANGLES] * lo
        return limited

    def coefficients(self, delta: np.ndarray) -> np.ndarray:
        """[J] coefficient of each expression direction for a signal change [55], after the governor."""
        return self._coefficients(self.limit_pose(delta))

    def _coefficients(self, delta: np.ndarray) -> np.ndarray:
        """coefficients() of a delta whose pose is already limited."""
        return self._governed(delta)[0]

    def _governed(self, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(coefficients [J], kept [J]) of a delta whose pose is already limited: kept is the share of each
        expression's ask the identity governor left (1 where it did not act)."""
        asked = self.readout @ delta
        if self.pose_cross_x is not None:
            asked = asked - self._pose_cross(delta)
        if self.cross_x is not None:  # two fixed-point steps: ask less of what the other directions show
            shown = asked
            for _ in range(2):
                shown = asked - self._cross(self._curves(shown))
            asked = shown
        c, kept = self._curves(asked), np.ones(len(asked))
        if self.frame_budget is None:
            return c, kept
        pose = self._pose_sq(delta)
        if self._cost(c, pose) <= self.frame_budget:
            return c, kept
        first = np.array([n in YIELDS_FIRST for n in self.names])
        if first.any() and self._cost(self._curves(np.where(first, 0.0, asked)), pose) <= self.frame_budget:
            s = self._largest(lambda s: np.where(first, s, 1.0) * asked, pose)
            kept = np.where(first, s, 1.0)
        else:
            power = np.array([YIELD_POWER.get(n, 1.0) for n in self.names])
            s = self._largest(lambda s: np.where(first, 0.0, s ** power) * asked, pose)
            kept = np.where(first, 0.0, s ** power)
        return self._curves(kept * asked), kept

    def _largest(self, scaled, pose_sq: float) -> float:
        """The largest s in [0, 1] for which the coefficients of scaled(s) [J] meet the frame budget (bisection).
        What is asked is scaled, not the coefficients: curves can have a dead zone near 0."""
        lo, hi = 0.0, 1.0
        for _ in range(12):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if self._cost(self._curves(scaled(mid)), pose_sq) <= self.frame_budget else (lo, mid)
        return lo

    def shown(self, delta: np.ndarray) -> np.ndarray:
        """[J] the change of each expression's readout the encoder means the avatar to show for a signal change
        [55]: what the driver asks, at the expression's scale, within its response curve's reach, as much of it
        as the identity governor keeps (0 for an expression left still). benchmarks/quality.py compares the
        driver with it, to tell what the encoder chose not to show from what the avatar did not show."""
        delta = self.limit_pose(delta)
        kept = self._governed(delta)[1]
        reach = np.clip(self.readout @ delta, self.curve_x[:, 0], self.curve_x[:, -1])
        moves = np.any(self.curve_y != 0, axis=1)
        return np.where(moves, self.expression_scales() * reach * kept, 0.0).astype(np.float32)

    def expression_scales(self) -> np.ndarray:
        """[J] the calibration's expression scale of each expression (asked changes show at that scale)."""
        return np.array([self.meta.get("expression_scale", {}).get(n, 1.0) for n in self.names], np.float32)

    def _curves(self, asked: np.ndarray) -> np.ndarray:
        c = np.array([np.interp(a, x, y) for a, x, y in zip(asked, self.curve_x, self.curve_y, strict=True)],
                     np.float32)
        if self.cond_pair is not None:
            j, i = self.cond_pair
            at = [np.interp(asked[j], x, y) for x, y in zip(self.cond_x, self.cond_y, strict=True)]
            c[j] = np.interp(c[i], self.cond_c, at)
        return c

    def _cross(self, c: np.ndarray) -> np.ndarray:
        """[J] asked-signal change each expression gets from the other expressions' directions at c."""
        j = len(c)
        made = np.array([[np.interp(c[a], self.cross_c[a], self.cross_x[a, :, b]) for b in range(j)]
                         for a in range(j)])
        return made.sum(0) - np.diag(made)

    def _pose_cross(self, delta: np.ndarray) -> np.ndarray:
        """[J] asked-signal change the head's yaw and pitch in delta make on this avatar (flat past the ends)."""
        degrees = delta[POSE_ANGLES] * POSE_SCALE
        return np.array([sum(np.interp(d, x, y[:, j]) for d, x, y in zip(degrees, self.pose_cross_x,
                                                                           self.pose_cross_y, strict=True))
                         for j in range(len(self.names))], np.float32)

    def _pose_sq(self, delta: np.ndarray) -> float:
        """Squared estimated identity distance of the head's yaw and pitch in delta."""
        degrees = delta[POSE_ANGLES] * POSE_SCALE
        if self.pose_cost_x is not None:
            return float(sum(np.interp(d, x, y) ** 2 for d, x, y in zip(degrees, self.pose_cost_x, self.pose_cost_y,
                                                                          strict=True)))
        return float(np.sum((self.pose_cost * degrees) ** 2))

    def _cost(self, c: np.ndarray, pose_sq: float) -> float:
        """Estimated identity distance of expression coefficients c on top of a pose cost (squared)."""
        each = [np.interp(v, x, y) for v, x, y in zip(c, self.cost_c, self.cost_id, strict=True)]
        return float(np.sqrt(pose_sq + np.sum(np.square(each))))

    def __call__(self, delta: np.ndarray) -> np.ndarray:
        delta = self.limit_pose(delta)
        pose = super().__call__(delta)
        return pose + np.tensordot(self._coefficients(delta), self.directions, axes=1)[None]

    def tensors(self) -> dict[str, np.ndarray]:
        t = {"matrix": self.matrix, "directions": self.directions, "readout": self.readout,
             "curve_x": self.curve_x, "curve_y": self.curve_y}
        if self.frame_budget is not None:
            t.update(cost_c=self.cost_c, cost_id=self.cost_id, pose_cost=self.pose_cost,
                     frame_budget=np.array([self.frame_budget], np.float32))
        if self.pose_share is not None:
            t["pose_share"] = np.array([self.pose_share], np.float32)
        if self.cross_x is not None:
            t.update(cross_c=self.cross_c, cross_x=self.cross_x)
        if self.pose_cross_x is not None:
            t.update(pose_cross_x=self.pose_cross_x, pose_cross_y=self.pose_cross_y)
        if self.pose_cost_x is not None:
            t.update(pose_cost_x=self.pose_cost_x, pose_cost_y=self.pose_cost_y)
        if self.cond_pair is not None:
            t.update(cond_pair=np.array(self.cond_pair, np.int64), cond_c=self.cond_c, cond_x=self.cond_x,
                     cond_y=self.cond_y)
        return t

    @classmethod
    def load(cls, path: Path = CALIBRATED_PATH, generator_sha256: str | None = None) -> CalibratedEncoder:
        return cls.from_tensors(*_read(path, generator_sha256, "calibrate_encoder"))

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray], meta: dict) -> CalibratedEncoder:
        names = meta.get("expressions") or [f"expression{i}" for i in range(len(t["directions"]))]
        budget = float(t["frame_budget"][0]) if "frame_budget" in t else None
        share = float(t["pose_share"][0]) if "pose_share" in t else None
        return cls(t["matrix"], int(t["matrix"].shape[1] // 512), t["directions"], t["readout"], t["curve_x"],
                   t["curve_y"], names, meta, t.get("cost_c"), t.get("cost_id"), t.get("pose_cost"), budget,
                   t.get("cross_c"), t.get("cross_x"), share,
                   tuple(int(n) for n in t["cond_pair"]) if "cond_pair" in t else None, t.get("cond_c"),
                   t.get("cond_x"), t.get("cond_y"), t.get("pose_cross_x"), t.get("pose_cross_y"),
                   t.get("pose_cost_x"), t.get("pose_cost_y"))


def load_encoder(path: Path | None = None, generator_sha256: str | None = None) -> LinearEncoder:
    """The encoder `live` drives avatars with: the calibrated one when it is there, else the linear baseline
    (or the file at `path`, of either kind)."""
    if path is None:
        path = CALIBRATED_PATH if CALIBRATED_PATH.is_file() else WEIGHTS_PATH
    tensors, meta = _read(path, generator_sha256, "calibrate_encoder")
    return (CalibratedEncoder if "directions" in tensors else LinearEncoder).from_tensors(tensors, meta)


def _read(path: Path, generator_sha256: str | None, script: str) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors, metadata) of an encoder file, checked against the generator."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no encoder weights at {path}: run `python -m live.train.{script}`")
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"encoder weights {path} are unreadable ({exc}): run `python -m live.train.{script}` "
                         "again or restore the file from git") from None
    meta_path = Path(path).with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if generator_sha256 and meta.get("generator_sha256") not in (None, generator_sha256):
        raise ValueError(f"encoder {path} was fitted for generator {meta.get('generator_sha256', '?')[:12]}, "
                         f"not {generator_sha256[:12]}: fit it again for this generator")
    return tensors, meta
