"""Live controls a person changes while on a call: gains, freeze, re-centre, emotion edit, warp strength.

One `Controls` object is shared by the encoder and warp stages (which read it every frame) and whoever changes it
(the web page over a data channel, keys in a preview window). Values are plain floats and bools that are
replaced whole, so reading them from another thread is safe; `update()` validates user input.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

GAIN_RANGE = (0.0, 2.0)
EMOTION_RANGE = (-3.0, 3.0)


@dataclass
class Controls:
    expression_gain: float = 1.0  # scale of the driver's blendshape changes (0..2)
    pose_gain: float = 1.0  # scale of the driver's head-angle changes (0..2)
    freeze: bool = False  # hold the current avatar pose and expression
    emotion: float = 0.0  # alpha of the emotion edit along the happy(+)/sad(-) direction (-3..3)
    warp_strength: float = 1.0  # scale of the geometric channel's warp (0 = off, 1 = the driver's motion, ..2)
    _recentre: threading.Event = field(default_factory=threading.Event, repr=False)

    def recentre(self) -> None:
        """Take the driver's next face frame as their new neutral."""
        self._recentre.set()

    def take_recentre(self) -> bool:
        """True once after each `recentre()` (for the encoder stage)."""
        if self._recentre.is_set():
            self._recentre.clear()
            return True
        return False

    def update(self, **values) -> dict:
        """Set controls by name from user input; returns the new state. Every value is checked before any is set:
        a message with one bad or unknown name changes nothing."""
        checked, recentre = {}, False
        for name, value in values.items():
            if name in ("expression_gain", "pose_gain", "warp_strength"):
                checked[name] = _number(name, value, *GAIN_RANGE)
            elif name == "emotion":
                checked[name] = _number(name, value, *EMOTION_RANGE)
            elif name == "freeze":
                if not isinstance(value, bool):
                    raise ValueError(f"freeze must be true or false, got {value!r}")
                checked[name] = value
            elif name == "recentre":
                recentre = bool(value)
            else:
                raise ValueError(f"unknown control {name!r}; known: expression_gain, pose_gain, freeze, "
                                 "recentre, emotion, warp_strength")
        for name, value in checked.items():
            setattr(self, name, value)
        if recentre:
            self.recentre()
        return self.state()

    def state(self) -> dict:
        return {"expression_gain": self.expression_gain, "pose_gain": self.pose_gain, "freeze": self.freeze,
                "emotion": self.emotion, "warp_strength": self.warp_strength}


def _number(name: str, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number in {lo:g}..{hi:g}, got {value!r}")
    v = float(value)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be within {lo:g}..{hi:g}, got {v:g}")
    return v
