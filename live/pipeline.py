"""Wiring only: a source and a chain of stages, one thread each, joined by LatestQueues.

    source --q--> stage 1 --q--> stage 2 ... --> last stage --> stats (+ on_frame callback)

In a live pipeline stage 1 is paced (live/pacing.py): it starts a frame only when that frame will reach the
slowest stage about as the slowest stage becomes free, so it does no work on frames that would be dropped.

The pipeline stops cleanly at the end of input (END travels down the chain), on Ctrl-C (the caller's
KeyboardInterrupt sets the stop flag and closes every queue) and on a stage error (same, then the error
is raised again on the caller's thread as a StageError naming the stage). No thread is left running:
every worker polls the stop flag, and `run()` reports any that did not end within `join_timeout_s`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from threadpoolctl import threadpool_limits

from live.frames import END, Frame
from live.gpu import OnHost
from live.pacing import Pacer
from live.queues import LatestQueue
from live.stage import Source, SourceWorker, Stage, StageError, StageWorker, Worker
from live.stats import WINDOW, Stats

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """How a run ended, with its numbers."""

    summary: dict  # Stats.summary(): per-stage timings, fps, latency, drops
    frames: int  # frames that reached the end of the pipeline
    interrupted: bool = False  # stopped by Ctrl-C or stop() before the end of the input
    stuck: list[str] = field(default_factory=list)  # workers that did not stop in time (should be empty)


class Pipeline:
    def __init__(self, source: Source, stages: Sequence[Stage], *, lossless: bool = False, queue_size: int = 1,
                 warmup: int = 0, on_frame: Callable[[Frame], None] | None = None, join_timeout_s: float = 10.0,
                 pace: bool | None = None, stats_window: int = WINDOW):
        # source: where frames come from; stages: run in order, the last one is the sink;
        # lossless: queues block instead of dropping (offline files); queue_size: items per queue;
        # warmup: frames left out of the stats; on_frame: called with every frame that reached the end
        # (on the last stage's thread: keep it short); join_timeout_s: how long stop waits per thread;
        # pace: start the first stage's frames just in time for the slowest stage (live/pacing.py); default:
        # on in a live pipeline, off in a lossless one; stats_window: the latest frames the stats' percentiles
        # cover.
        if not stages:
            raise ValueError("a pipeline needs at least one stage after the source")
        self.source = source
        self.stages = list(stages)
        self.stats = Stats(warmup=warmup, window=stats_window)
        self.on_frame = on_frame
        self.join_timeout_s = join_timeout_s
        self._stop = threading.Event()
        self._ended = threading.Event()  # END reached the last stage: the input was used up
        self._errors: list[StageError] = []
        self._lock = threading.Lock()
        self._on_host = OnHost()  # the GPU path's one download, in the last stage's thread
        names = [source.name] + [s.name for s in self.stages]
        self.queues = [LatestQueue(f"{a}->{b}", maxsize=queue_size, lossless=lossless)
                       for a, b in zip(names, names[1:])]
        self._workers: list[Worker] = []
        self.pacer = Pacer(len(self.stages)) if (not lossless if pace is None else pace) else None

    def replace(self, role: str, make: Callable[[Stage], Stage]) -> None:
        """Replace the stage named `role` (or `role/...`, e.g. "synthesis" for "synthesis/torch") with make(old
        stage): before the run at once, during it between two frames on that stage's thread (the new stage is
        started there, the old one closed). How a server switches identity without reaching into stages."""
        index = next((i for i, st in enumerate(self.stages) if st.name == role or st.name.startswith(role + "/")),
                     None)
        if index is None:
            raise ValueError(f"no stage {role!r} in this pipeline: {', '.join(st.name for st in self.stages)}")
        with self._lock:
            if self._workers:
                self._workers[index + 1].replace(make)  # worker 0 is the source's
            else:
                self.stages[index] = make(self.stages[index])

    def dropped(self) -> dict[str, int]:
        return {q.name: q.dropped for q in self.queues}

    def summary(self) -> dict:
        summary = self.stats.summary(self.dropped())
        slowest = self.pacer.slowest() if self.pacer is not None else None
        if slowest:  # 0 (the first stage is the slowest) or None: nothing was paced
            summary["paced"] = {"stage": self.stages[0].name, "by": self.stages[slowest].name,
                                "held_s": round(self.pacer.waited_s, 2)}
        return summary

    def _deliver(self, frame: Frame) -> None:
        frame = self._on_host(frame)  # a pipeline that ends before a sink hands out host images too
        self.stats.record(frame)
        if self.on_frame is not None:
            self.on_frame(frame)

    def _end_of_input(self) -> None:
        self._ended.set()
        self._stop.set()

    def _on_error(self, error: StageError) -> None:
        with self._lock:
            self._errors.append(error)
        log.error("%s", error)
        self.stop()

    def stop(self) -> None:
        """Ask every worker to stop; safe to call from any thread, more than once."""
        self._stop.set()
        for q in self.queues:
            q.close()

    def _build_workers(self) -> list[Worker]:
        workers: list[Worker] = []
        for i, stage in enumerate(self.stages):
            last = i == len(self.stages) - 1
            deliver = self._deliver if last else self.queues[i + 1].put
            finish = self._end_of_input if last else (lambda q=self.queues[i + 1]: q.put(END, force=True))
            workers.append(StageWorker(stage, self.queues[i], deliver, self._on_error, self._stop, finish,
                                       self.pacer, i, prepare=self._on_host if last else None))
        source = SourceWorker(self.source, self.queues[0], [w.ready for w in workers], self._on_error, self._stop)
        return [source] + workers

    def run(self) -> RunResult:
        """Run until the input ends, a stage fails (raises StageError) or Ctrl-C (returns interrupted)."""
        # numpy's BLAS on one thread, for the rest of the process: each stage has its own thread, the per-frame
        # matrices are small, and BLAS threads spinning between them took the cores synthesis needs (fps.py d3 with
        # the warp, 2 cores: 4.7 -> 7.0 fps). torch's own threads (OpenMP) are not BLAS's and keep their setting.
        threadpool_limits(1, user_api="blas")
        with self._lock:
            self._workers = self._build_workers()
        restore = self._catch_ctrl_c()
        try:
            for w in self._workers:
                w.start()
            while not self._stop.is_set():
                self._stop.wait(0.1)
        except KeyboardInterrupt:  # where the handler could not be installed (not the main thread)
            log.info("interrupted: stopping the pipeline")
        finally:
            self.stop()
            stuck = self._join()
            restore()
        if self._errors:
            raise self._errors[0]
        return RunResult(self.summary(), self.stats.arrived, not self._ended.is_set(), stuck)

    def _catch_ctrl_c(self) -> Callable[[], None]:
        """On the main thread, Ctrl-C stops the pipeline instead of raising, and a second one while the workers
        finish only says so: an exception in the middle of the join used to leave native threads running while
        the interpreter exited (abort, rc 134). Returns what puts the previous handler back, unless Ctrl-C was
        pressed: then the program is on its way out and further Ctrl-C are ignored (a Python handler would be
        reset to the default during the interpreter's shutdown, and a Ctrl-C then kills the process)."""
        if threading.current_thread() is not threading.main_thread() \
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return lambda: None
        asked = []

        def on_ctrl_c(signum, frame) -> None:
            if asked:
                log.info("already stopping: waiting for the stages to finish their frame")
                return
            asked.append(True)
            log.info("interrupted: stopping the pipeline")
            self.stop()

        previous = signal.signal(signal.SIGINT, on_ctrl_c)

        def restore() -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN if asked else previous)

        return restore

    def _join(self) -> list[str]:
        deadline = time.monotonic() + self.join_timeout_s
        stuck = []
        for w in self._workers:
            w.join(max(0.0, deadline - time.monotonic()))
            if w.is_alive():
                stuck.append(w.stage_name)
        if stuck:
            log.error("these stages did not stop within %.0f s and were abandoned: %s",
                      self.join_timeout_s, ", ".join(stuck))
        return stuck
