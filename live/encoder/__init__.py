"""The deformation encoder: the driver's change of signals -> the W+ offset of the first K style layers.

`Encoder.__call__` with `_governed` is the whole per-frame behaviour; each step is a function of live.encoder.steps, and
everything measured on the avatar is in its `AvatarResponse` (live.encoder.response), which the runtime
only reads.
"""

from __future__ import annotations

import numpy as np

from live.encoder import steps
from live.encoder.response import AvatarResponse, ConditionedCurve, CrossTalk, Governor, PoseCrossTalk


class Encoder:
    """offset [1,K,512] for a driver's signal change [55] on one avatar."""

    def __init__(self, response: AvatarResponse, meta: dict | None = None):
        # response: what was measured of this avatar; meta: the calibration's and fit's metadata (reports only).
        self.response, self.meta = response, meta or {}
        self.k = response.k

    @classmethod
    def from_calibrated(cls, enc) -> Encoder:
        """The record of a live.models.encoder.CalibratedEncoder (as calibrated, or fitted to an avatar)."""
        from live.models.encoder import YIELD_POWER, YIELDS_FIRST

        governor = None
        if enc.frame_budget is not None:
            governor = Governor(enc.frame_budget, enc.cost_c, enc.cost_id, enc.pose_cost, enc.pose_cost_x,
                                enc.pose_cost_y, enc.pose_share, np.array([n in YIELDS_FIRST for n in enc.names]),
                                np.array([YIELD_POWER.get(n, 1.0) for n in enc.names]))
        response = AvatarResponse(
            tuple(enc.names), enc.k, enc.matrix, enc.directions, enc.readout, enc.curve_x, enc.curve_y,
            enc.expression_scales(), governor,
            CrossTalk(enc.cross_c, enc.cross_x) if enc.cross_x is not None else None,
            ConditionedCurve(*enc.cond_pair, enc.cond_c, enc.cond_x, enc.cond_y) if enc.cond_pair else None,
            PoseCrossTalk(enc.pose_cross_x, enc.pose_cross_y) if enc.pose_cross_x is not None else None)
        return cls(response, enc.meta)

    def __call__(self, delta: np.ndarray) -> np.ndarray:
        delta, c, _ = self._governed(delta)
        return steps.latent_offset(delta, c, self.response)  # the head's linear map plus the expression directions

    def _governed(self, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(delta [55] with the head limited, coefficients [J], kept [J]: the share of each ask the governor kept)."""
        r = self.response
        delta = steps.limit_pose(delta, r.governor)  # the head within its share of the identity budget
        asked = steps.expression_asks(delta, r)  # what each expression is asked, less its cross-talk
        pose_sq = steps.pose_cost_sq(delta, r.governor) if r.governor is not None else 0.0
        c, kept = steps.govern(asked, pose_sq, r)  # coefficients within the identity budget
        return delta, c, kept

    def coefficients(self, delta: np.ndarray) -> np.ndarray:
        """[J] coefficient of each expression direction for a signal change [55]."""
        return self._governed(delta)[1]

    def shown(self, delta: np.ndarray) -> np.ndarray:
        """[J] the change of each expression's readout the encoder means the avatar to show for a signal change
        [55]: the driver's, at the expression's scale, within its curve's reach, as much as the governor keeps
        (0 for an expression left still). benchmarks/quality.py compares the driver with it."""
        r = self.response
        delta, _, kept = self._governed(delta)
        reach = np.clip(r.readout @ delta, r.curve_x[:, 0], r.curve_x[:, -1])
        moves = np.any(r.curve_y != 0, axis=1)
        return np.where(moves, r.scales * reach * kept, 0.0).astype(np.float32)
