"""The deformation encoder: the driver's change of signals -> the W+ offset of the first K style layers.

`Encoder.__call__` with `_governed` is the whole per-frame behaviour; each step is a function of live.encoder.steps, and
everything measured on the avatar is in its `AvatarResponse` (live.encoder.response), which the calibration
(live.train.calibrate_encoder) and the avatar fit (live.avatar_fit) write and the runtime only reads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from live.encoder import steps
from live.encoder.response import FORMAT_VERSION, AvatarResponse
from live.models.encoder import CALIBRATED_PATH, WEIGHTS_PATH, LinearEncoder
from live.models.tensor_file import read_tensors, write_tensors


class Encoder:
    """offset [1,K,512] for a driver's signal change [55] on one avatar."""

    def __init__(self, response: AvatarResponse, meta: dict | None = None):
        # response: what was measured of this avatar; meta: the calibration's and fit's report (read by nothing
        # at run time; saved beside the record).
        self.response, self.meta = response, meta or {}
        self.k, self.names = response.k, list(response.names)

    def __call__(self, delta: np.ndarray) -> np.ndarray:
        delta, c, _ = self._governed(delta)
        delta = steps.take_off_expression_turn(delta, c, self.response)  # the turn the expressions make themselves
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

    def with_governor(self, frame_budget: float | None = None, pose_share: float | None = None) -> Encoder:
        """This encoder with another identity frame budget and/or head share (None: keep its own; pose_share 1:
        no cap on the head), checked like a loaded one."""
        g = self.response.governor
        if g is None:
            raise ValueError("this encoder has no identity governor (calibrate it with --frame-budget > 0)")
        g = dataclasses.replace(g, frame_budget=g.frame_budget if frame_budget is None else float(frame_budget),
                                pose_share=None if pose_share == 1 else pose_share if pose_share is not None
                                else g.pose_share)
        return Encoder(dataclasses.replace(self.response, governor=g), self.meta)

    def save(self, path: Path) -> None:
        """The record and its report (PATH.json), each written then renamed."""
        meta = {**self.meta, **self.response.meta()}
        write_tensors(path, self.response.tensors(), meta, {"k": str(self.k), "format_version": str(FORMAT_VERSION)})

    @classmethod
    def load(cls, path: Path = CALIBRATED_PATH, generator_sha256: str | None = None) -> Encoder:
        """A calibrated or fitted encoder file; refuses one fitted for another generator or of a newer format."""
        tensors, meta, header = read_tensors(path, generator_sha256, "calibrate_encoder")
        return cls._of(path, tensors, meta, header)

    @classmethod
    def _of(cls, path: Path, tensors: dict, meta: dict, header: dict) -> Encoder:
        version = int(header.get("format_version", 1))
        if version > FORMAT_VERSION:
            raise ValueError(f"encoder {path} has format {version}; this live reads up to {FORMAT_VERSION}: "
                             "update live, or calibrate again")
        try:
            return cls(AvatarResponse.from_tensors(tensors, meta), meta)
        except ValueError as exc:
            raise ValueError(f"encoder {path} is inconsistent ({exc}): run `python -m live.train.calibrate_encoder` "
                             "again or restore the file from git") from None


def load_encoder(path: Path | None = None, generator_sha256: str | None = None) -> Encoder | LinearEncoder:
    """The encoder `live` drives avatars with: the calibrated one when it is there, else the linear baseline
    (or the file at `path`, of either kind)."""
    if path is None:
        path = CALIBRATED_PATH if CALIBRATED_PATH.is_file() else WEIGHTS_PATH
    tensors, meta, header = read_tensors(path, generator_sha256, "calibrate_encoder")
    if "directions" in tensors:
        return Encoder._of(path, tensors, meta, header)
    return LinearEncoder.from_tensors(tensors, meta)
