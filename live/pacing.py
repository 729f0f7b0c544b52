"""Just-in-time pacing of a live pipeline's first stage.

In a live pipeline the slowest stage sets the frame rate: on a 2-core CPU synthesis takes one tracked
frame in three and the queue in front of it drops the other two, after tracking spent CPU on them that
synthesis needed. The `Pacer` lets the first stage start a frame only when that frame will reach the
slowest stage about as it becomes free:

    due = (when the slowest stage took its frame) + (its typical time) - (the stages before it) - margin

so tracking works once per synthesised frame, on the newest captured frame, and the frame waits ~margin
in front of synthesis. If a frame never reaches the slowest stage (a stage dropped it), the first stage
goes again one typical period after it started the last one. Typical times are medians of the last
`window` frames per stage; until every stage has one, and whenever the first stage is itself the slowest,
nothing waits. Offline (lossless) pipelines are not paced: there every frame is processed.
"""

from __future__ import annotations

import collections
import statistics
import threading
import time

WINDOW = 9  # frames in each stage's typical-time median
MARGIN_S = 0.005  # how early a frame may arrive in front of the slowest stage


class Pacer:
    def __init__(self, stages: int, window: int = WINDOW, margin_s: float = MARGIN_S,
                 clock=time.monotonic):
        # stages: how many stages the pipeline has (index 0 is the paced one); window: frames per median;
        # margin_s: slack left in front of the slowest stage; clock: seconds, monotonic (tests give their own).
        if stages < 1:
            raise ValueError(f"a pacer needs at least one stage, got {stages}")
        self._times = [collections.deque(maxlen=window) for _ in range(stages)]
        self.margin_s = margin_s
        self.clock = clock
        self._due = 0.0  # the first stage may not start a frame before this (clock seconds)
        self._cond = threading.Condition()
        self.waited_s = 0.0  # total time the first stage was held back

    def typical(self) -> list[float] | None:
        """Each stage's median seconds per frame, or None while some stage has none yet."""
        with self._cond:
            return self._typical()

    def _typical(self) -> list[float] | None:
        if any(not t for t in self._times):
            return None
        return [statistics.median(t) for t in self._times]

    def slowest(self) -> int | None:
        """Index of the stage that sets the pace (None while some stage has no typical time yet)."""
        typical = self.typical()
        return None if typical is None else _slowest(typical)

    def took(self, index: int) -> None:
        """Stage `index` took a frame from its queue (call right after the get)."""
        now = self.clock()
        with self._cond:
            typical = self._typical()
            if typical is None:
                return
            slowest = _slowest(typical)
            if slowest == 0:
                self._due = 0.0
            elif index == 0:
                self._due = max(self._due, now + typical[slowest])
            elif index == slowest:
                self._due = now + typical[slowest] - sum(typical[:slowest]) - self.margin_s
            else:
                return
            self._cond.notify_all()

    def done(self, index: int, seconds: float) -> None:
        """Stage `index` finished a frame in `seconds`."""
        with self._cond:
            self._times[index].append(seconds)

    def wait(self, stop: threading.Event, poll_s: float = 0.1) -> None:
        """Block the first stage until its next frame is due (or `stop` is set)."""
        start = self.clock()
        with self._cond:
            while not stop.is_set():
                remaining = self._due - self.clock()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, poll_s))
            self.waited_s += max(0.0, self.clock() - start)


def _slowest(typical: list[float]) -> int:
    """Index of the largest typical time."""
    return max(range(len(typical)), key=typical.__getitem__)
