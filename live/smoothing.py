"""One-Euro filtering of the tracking signals (Casiez, Roussel & Vogel, CHI 2012).

A One-Euro filter is a low-pass filter whose cut-off rises with the signal's speed: still faces are
smoothed hard (no jitter), fast moves pass with little lag. Time comes from the frames' media time, so
the result does not depend on how fast the machine processes a file.
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuro:
    """Element-wise One-Euro filter over arrays of a fixed shape."""

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float = 1.0):
        # min_cutoff: Hz at rest (lower = smoother, more lag); beta: cut-off added per unit/s of speed;
        # d_cutoff: Hz of the speed estimate itself.
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("One-Euro: min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t <= self._t or x.shape != self._x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()


# Per signal: how fast it moves when it moves fast (units/s). beta = 1/speed, so a fast move raises the
# cut-off by about 1 Hz per unit of strength-scaled beta; the values were set on the real driving clips.
# Blendshapes: a blink closes in ~100 ms; at 0.25 (was 1.0) the filter's own error on the 9 shared clips
# fell from 0.25 to 0.17 of the blinks' change (jawOpen 0.21 -> 0.13) while their jitter on each clip's
# stillest second rose from 0.0052 to 0.0060 per frame (unfiltered: 0.0101).
SIGNAL_SPEEDS = {"landmarks": 0.1, "blendshapes": 0.25, "angles": 10.0, "translation": 1.0}
MIN_CUTOFF_HZ = 1.5
# Cut-off of the speed estimate (Hz; 1 elsewhere): at 1 Hz a blink's speed was still building up when the blink
# was over, so the filter let the eye reopen two frames late. At 4 Hz the filter's error on the 9 shared clips fell
# from 0.17 to 0.11 of the blinks' change (jawOpen 0.13 -> 0.08) while the jitter of jaw, blinks, smile and brows
# on each clip's stillest second barely moved (0.0081 -> 0.0082 per frame; unfiltered 0.0121).
SPEED_CUTOFF_HZ = {"blendshapes": 4.0}


class SignalSmoother:
    """One-Euro filters for each tracking signal, with one `strength` knob (0 = off, 1 = default)."""

    def __init__(self, strength: float = 1.0):
        # strength: 0 turns smoothing off; 2 smooths twice as hard (half the cut-off), 0.5 half as hard.
        if strength < 0:
            raise ValueError(f"smoothing strength must be >= 0 (0 = off), got {strength}")
        self.strength = strength
        self.filters = {} if strength == 0 else {
            name: OneEuro(MIN_CUTOFF_HZ / strength, 1.0 / (speed * strength), SPEED_CUTOFF_HZ.get(name, 1.0))
            for name, speed in SIGNAL_SPEEDS.items()
        }

    @property
    def enabled(self) -> bool:
        return bool(self.filters)

    def reset(self) -> None:
        for f in self.filters.values():
            f.reset()

    def __call__(self, name: str, x: np.ndarray, t: float) -> np.ndarray:
        if not self.filters:
            return np.asarray(x, dtype=np.float64)
        return self.filters[name](x, t)
