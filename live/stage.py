"""The Stage and Source protocols, and the worker loops that run one of each on its own thread."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Protocol, runtime_checkable

from live.frames import END, Frame
from live.pacing import Pacer
from live.queues import LatestQueue, QueueClosed

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often a waiting worker looks at the stop flag
STAGE_THREAD_PREFIX = "live-"  # stage worker threads are named this + the stage name


@runtime_checkable
class Stage(Protocol):
    """One step of the pipeline. Runs on its own thread: start(), then process() per frame, then close()."""

    name: str

    def start(self) -> None:
        """Load models and warm up; called on the stage's thread before the first frame."""

    def process(self, frame: Frame) -> Frame | None:
        """Return the frame for the next stage (a replaced copy), or None to drop it."""

    def close(self) -> None:
        """Release everything; called on the stage's thread, also after an error elsewhere."""


@runtime_checkable
class Source(Protocol):
    """Where frames come from (camera, video, images). Runs on its own thread."""

    name: str
    fps: float  # nominal frames per second (for pacing and for writing videos)

    def start(self) -> None:
        """Open the device or file; called on the source's thread."""

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the input."""

    def close(self) -> None:
        """Release the device or file."""


class StageError(RuntimeError):
    """A stage raised: carries the stage's name so the user knows where it happened."""

    def __init__(self, stage: str, error: BaseException):
        self.stage = stage
        self.error = error
        super().__init__(f"stage '{stage}' failed: {error}")


class Worker(threading.Thread):
    """Runs one stage (or the source) and reports its error, if any, through `on_error`."""

    def __init__(self, name: str, on_error: Callable[[StageError], None], stop: threading.Event):
        super().__init__(name=f"{STAGE_THREAD_PREFIX}{name}", daemon=True)
        self.stage_name = name
        self.on_error = on_error
        self.stop_event = stop
        self.ready = threading.Event()  # set once start() returned (or failed)

    def run(self) -> None:
        try:
            self.loop()
        except QueueClosed:
            pass  # the pipeline is stopping
        except Exception as exc:  # noqa: BLE001 - any stage error must reach the user with the stage name
            log.debug("stage %s raised", self.stage_name, exc_info=True)
            self.on_error(StageError(self.stage_name, exc))
        finally:
            self.ready.set()

    def loop(self) -> None:
        raise NotImplementedError


class StageWorker(Worker):
    def __init__(self, stage: Stage, inq: LatestQueue, deliver: Callable[[Frame], None],
                 on_error: Callable[[StageError], None], stop: threading.Event, finish: Callable[[], None],
                 pacer: Pacer | None = None, index: int = 0, prepare: Callable[[Frame], Frame] | None = None):
        # deliver: where processed frames go (the next queue's put, or the pipeline's sink accounting);
        # finish: called once when END arrives (forward the end of stream);
        # pacer: the live pipeline's Pacer (None: unpaced); index: this stage's place in the chain, from 0;
        # prepare: applied to each frame before the stage (timed with it), e.g. the sink's one download.
        super().__init__(stage.name, on_error, stop)
        self.stage = stage
        self.inq = inq
        self.deliver = deliver
        self.finish = finish
        self.pacer = pacer
        self.index = index
        self.prepare = prepare
        self._swap: Callable[[Stage], Stage] | None = None

    def replace(self, make: Callable[[Stage], Stage]) -> None:
        """Between two frames, on this worker's thread: stage = make(stage); a new stage is started and the old
        one closed. The frame in hand finishes on the old stage."""
        self._swap = make

    def _swap_stage(self) -> None:
        make, self._swap = self._swap, None
        new = make(self.stage)
        if new is not self.stage:
            new.start()
            old, self.stage = self.stage, new
            old.close()

    def loop(self) -> None:
        try:
            self.stage.start()
            self.ready.set()
            paced = self.pacer is not None and self.index == 0
            while not self.stop_event.is_set():
                if self._swap is not None:
                    self._swap_stage()
                if paced:
                    self.pacer.wait(self.stop_event, POLL_S)
                try:
                    item = self.inq.get(timeout=POLL_S)
                except TimeoutError:
                    continue
                if item is END:
                    self.finish()
                    return
                if self.pacer is not None:
                    self.pacer.took(self.index)
                t0 = time.perf_counter_ns()
                out = self.stage.process(item if self.prepare is None else self.prepare(item))
                ms = (time.perf_counter_ns() - t0) / 1e6
                if self.pacer is not None:
                    self.pacer.done(self.index, ms / 1e3)
                if out is not None:
                    self.deliver(out.timed(self.stage.name, ms))
        finally:
            self.stage.close()


class SourceWorker(Worker):
    def __init__(self, source: Source, outq: LatestQueue, wait_for: list[threading.Event],
                 on_error: Callable[[StageError], None], stop: threading.Event):
        # wait_for: the stages' ready events; reading starts once every stage has loaded its models.
        super().__init__(source.name, on_error, stop)
        self.source = source
        self.outq = outq
        self.wait_for = wait_for

    def loop(self) -> None:
        try:
            self.source.start()
            self.ready.set()
            for event in self.wait_for:
                while not event.wait(POLL_S):
                    if self.stop_event.is_set():
                        return
            while not self.stop_event.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                self.outq.put(frame)
            self.outq.put(END, force=True)
        finally:
            self.source.close()
