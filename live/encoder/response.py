"""What the avatar fit (or the calibration) measured of how one avatar responds: a typed, frozen record that
training and fitting write and the per-frame encoder only reads.

Layouts (J expressions, K offset layers, P/Q points of a piecewise-linear table):
    matrix      [55, K*512]  the linear map; its yaw and pitch rows move the head
    directions  [J, K, 512]  one offset per expression
    readout     [J, 55]      how the driver's signals make each expression's asked change
    curve_x/y   [J, P]       response curve: asked change (increasing) -> coefficient, flat beyond its ends
Every optional group is None when the encoder was made without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FORMAT_VERSION = 1  # of the record as tensors + metadata (live/models/encoder_*.safetensors, avatar fits)


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


@dataclass(frozen=True)
class CrossTalk:
    """What each expression's direction does to the others' asked signals (taken off what is asked)."""

    c: np.ndarray  # [J,Q] coefficients
    x: np.ndarray  # [J,Q,J] change of each expression's asked signal that direction j makes there


@dataclass(frozen=True)
class ConditionedCurve:
    """Expression `j`'s curve measured again at coefficients `c` of expression `i`, interpolated between."""

    j: int
    i: int
    c: np.ndarray  # [L] coefficients of i (increasing, from 0)
    x: np.ndarray  # [L,P] asked change at each level (row 0: j's own curve)
    y: np.ndarray  # [L,P] coefficient


@dataclass(frozen=True)
class PoseCrossTalk:
    """What the avatar's own head turn does to each expression's asked signal."""

    x: np.ndarray  # [2,P] degrees of yaw and pitch asked (increasing, through 0)
    y: np.ndarray  # [2,P,J] change of each expression's asked signal there


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
