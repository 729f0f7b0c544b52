"""Encoder stage: the driver's tracked face -> the offset of the first K style layers.

Relative mode (default): the signal is the driver's change from their own neutral reference (the first
frame with a face; `recentre()` takes the next face frame as the new neutral), so the driver's face shape
never leaks into the avatar. Absolute mode uses the signals as they are, against a zero reference.
Stabilised: implausible jumps are clamped, the offset can be smoothed, and when the face is lost the
offset eases back to neutral instead of freezing or jumping.

Head roll is not a latent offset: the generator only knows FFHQ-aligned (upright) faces, so the
driver's relative roll is carried on the frame and applied to the synthesised image as an in-plane
rotation (`Frame.avatar_roll`).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np

from live.controls import Controls
from live.frames import Frame
from live.models.encoder import NUM_SIGNALS, POSE_SCALE, SIGNAL_INDEX, face_signals

if TYPE_CHECKING:
    from live.encoder import Encoder
    from live.models.encoder import LinearEncoder

log = logging.getLogger(__name__)

MAX_POSE_CHANGE_DEG = 45.0  # largest head-angle change a frame may ask (a larger jump is a tracking error)
NUM_BLENDSHAPES = SIGNAL_INDEX["yaw"]  # the blendshapes come first in the signal vector, then yaw, pitch, roll
MAX_DELTA = np.concatenate([np.full(NUM_BLENDSHAPES, 1.0),  # clamp per signal
                            np.full(NUM_SIGNALS - NUM_BLENDSHAPES, MAX_POSE_CHANGE_DEG / POSE_SCALE)]).astype(np.float32)
ROLL = SIGNAL_INDEX["roll"]


class EncoderStage:
    name = "encoder"

    def __init__(self, encoder: Encoder | LinearEncoder, relative: bool = True, smoothing_s: float = 0.0,
                 release_s: float = 0.5, expression_gain: float = 1.0, pose_gain: float = 1.0,
                 controls: Controls | None = None, emotion_direction: np.ndarray | None = None):
        # encoder: signals -> offset; relative: against the driver's own neutral (else absolute);
        # smoothing_s: time constant of extra offset smoothing (0 = none; signals are One-Euro smoothed
        # already); release_s: time constant of the ease back to neutral when the face is lost;
        # expression_gain / pose_gain: scale of blendshape / head-angle changes (0..2), the starting values
        # of `controls` (live gains, freeze, re-centre, emotion; shared with the UI); emotion_direction:
        # [1,K,512] unit offset of the happy(+)/sad(-) edit, scaled by controls.emotion.
        self.controls = controls or Controls(expression_gain=expression_gain, pose_gain=pose_gain)
        self.emotion_direction = emotion_direction
        self.encoder = encoder
        self.relative = relative
        self.smoothing_s, self.release_s = smoothing_s, release_s
        self.reference: np.ndarray | None = None if relative else np.zeros(NUM_SIGNALS, np.float32)
        self.reference_face = None  # the Face the reference was taken from (relative mode): the warp's neutral
        self._offset = np.zeros((1, encoder.k, 512), np.float32)
        self._roll = 0.0  # degrees, eased back like the offset
        self._t: float | None = None
        self._warned_no_face = False
        self._recentre = False
        self.last_delta: np.ndarray | None = None  # [55] the signal change the last frame asked (None: no face)

    def with_encoder(self, encoder: Encoder | LinearEncoder) -> EncoderStage:
        """A stage driving another avatar's encoder (same K) with this one's controls, settings and driver
        neutral, starting from neutral (`Pipeline.replace` calls it on the stage's own thread)."""
        if encoder.k != self.encoder.k:
            raise ValueError(f"the new encoder drives K={encoder.k} style layers, this one K={self.encoder.k}")
        stage = EncoderStage(encoder, self.relative, self.smoothing_s, self.release_s, controls=self.controls,
                             emotion_direction=self.emotion_direction)
        stage.reference, stage.reference_face = self.reference, self.reference_face
        return stage

    def recentre(self) -> None:
        """Take the next frame with a face as the driver's neutral."""
        self.controls.recentre()

    @property
    def gains(self) -> np.ndarray:
        c = self.controls
        return np.concatenate([np.full(NUM_BLENDSHAPES, c.expression_gain),
                               np.full(NUM_SIGNALS - NUM_BLENDSHAPES, c.pose_gain)]).astype(np.float32)

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def process(self, frame: Frame) -> Frame:
        dt = 0.0 if self._t is None else max(0.0, frame.t_media_s - self._t)
        self._t = frame.t_media_s
        if not self.controls.freeze:
            self._follow(frame, dt)
        offset = self._offset.copy()
        alpha = self.controls.emotion
        if alpha and self.emotion_direction is not None:
            offset += alpha * self.emotion_direction
        return frame.replace(offset=offset, avatar_roll=self._roll, signal_change=self.last_delta,
                             neutral=self.reference_face)

    def _follow(self, frame: Frame, dt: float) -> None:
        """Move the offset towards this frame's driving signals (or back to neutral without a face)."""
        if self.controls.take_recentre():
            self._recentre = True
        if frame.face is None:
            self.last_delta = None
            if not self._warned_no_face and self.reference is None:
                log.warning("no face in the driving input yet: the avatar stays neutral")
                self._warned_no_face = True
            decay = math.exp(-dt / self.release_s) if self.release_s > 0 else 0.0
            self._offset = self._offset * decay
            self._roll *= decay
            return
        signals = face_signals(frame.face)
        if self.reference is None or self._recentre:
            self.reference, self._recentre = signals.copy(), False
            self.reference_face = frame.face if self.relative else None
            log.info("driver neutral taken at frame %d", frame.seq)
        delta = np.clip((signals - self.reference) * self.gains, -MAX_DELTA, MAX_DELTA)
        roll = float(delta[ROLL]) * POSE_SCALE  # back to degrees
        delta[ROLL] = 0.0  # roll is applied to the image, not the latent
        self.last_delta = delta
        target = self.encoder(delta)
        if self.smoothing_s > 0 and dt > 0:
            a = 1.0 - math.exp(-dt / self.smoothing_s)
            self._offset = self._offset + a * (target - self._offset)
            self._roll += a * (roll - self._roll)
        else:
            self._offset, self._roll = target, roll
