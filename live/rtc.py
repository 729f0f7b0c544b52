"""WebRTC sessions: a browser's camera track in, the reenacted avatar track out.

Latency is the point, and aiortc's known pitfall is a consumer slower than the incoming track, which
makes frames pile up in its decoder queue and latency grow without bound. So, per peer:

    loop thread:    ingest task   await track.recv() as fast as frames come -> LatestQueue(1) (drops counted)
    worker thread:  latest frame -> tracking -> encoder -> synthesis (shared, locked) -> latest avatar slot
    loop thread:    AvatarTrack.recv() paced at 30 fps: the newest avatar (repeated if none is newer)

Nothing heavy runs on the event loop: frame conversion and all model work happen on the worker.
Timestamps: each frame carries its server arrival time (`t_capture_ns`), so the avatar's age when it is
sent is the server-side latency, reported with p50/p95 in `stats()`.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from live.controls import Controls
from live.frames import Frame
from live.queues import LatestQueue, QueueClosed

log = logging.getLogger(__name__)

SEND_FPS = 30
CLOCK = 90_000


@dataclass
class Avatar:
    image: np.ndarray  # [S,S,3] uint8 RGB
    t_arrival_ns: int  # when the driving frame that made it reached the server
    seq: int


class Engine:
    """What all peers share: the encoder weights, one synthesis network (locked), the identity."""

    def __init__(self, make_synthesis, encoder, landmarker_path, size: int, emotion_direction=None,
                 identity: str = "seed:0"):
        # make_synthesis: callable(identity spec) -> (a started SynthesisStage, the encoder for that avatar);
        # encoder: LinearEncoder (until the first identity is built);
        # landmarker_path: face_landmarker.task; size: avatar side; emotion_direction: [1,K,512] or None;
        # identity: the spec the server starts with.
        self.make_synthesis = make_synthesis
        self.encoder = encoder
        self.landmarker_path = landmarker_path
        self.size = size
        self.emotion_direction = emotion_direction
        self.identity = identity
        self.lock = threading.Lock()
        self.synthesis, self.encoder = make_synthesis(identity)

    def switch_identity(self, spec: str) -> None:
        """Build the synthesis for another identity (seconds), then swap it in for every peer."""
        new, encoder = self.make_synthesis(spec)
        with self.lock:
            old, self.synthesis, self.identity = self.synthesis, new, spec
            self.encoder = encoder  # peers pick it up with their next frame
        old.close()

    def render(self, frame: Frame) -> Frame:
        with self.lock:
            return self.synthesis.process(frame)


class PeerSession:
    """One connected browser: its tracker, encoder state, controls, worker thread and stats."""

    def __init__(self, engine: Engine, name: str):
        from live.stages.encoder import EncoderStage

        self.engine = engine
        self.name = name
        self.controls = Controls()
        self.encoder = EncoderStage(engine.encoder, controls=self.controls,
                                    emotion_direction=engine.emotion_direction)
        self.queue = LatestQueue(f"{name} camera->worker")
        self.avatar: Avatar | None = None
        self.frames_in = self.frames_done = self.frames_sent = 0
        self.latencies = collections.deque(maxlen=300)  # server arrival -> avatar sent, ms
        self.work_ms = collections.deque(maxlen=300)
        self.error: str | None = None
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name=f"rtc-{name}", daemon=True)
        self._ingest: asyncio.Task | None = None
        self._started = time.monotonic()
        self._created_ns = time.perf_counter_ns()  # media time of a frame: its arrival since this moment

    @property
    def started(self) -> bool:
        """True once a camera track is being read."""
        return self._ingest is not None

    def start(self, track) -> None:
        """Begin reading `track` (the browser camera); call on the event loop."""
        self._worker.start()
        self._ingest = asyncio.ensure_future(self._read(track))

    async def _read(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        seq = 0
        try:
            while True:
                frame = await track.recv()
                self.frames_in += 1
                try:
                    self.queue.put((seq, time.perf_counter_ns(), frame))
                except QueueClosed:
                    return
                seq += 1
        except MediaStreamError:
            log.info("%s: camera track ended", self.name)

    def _work(self) -> None:
        from live.stages.tracking import TrackingStage

        tracking = TrackingStage(self.engine.landmarker_path)
        try:
            tracking.start()
            while not self._stop.is_set():
                try:
                    seq, t_ns, vframe = self.queue.get(timeout=0.1)
                except TimeoutError:
                    continue
                except QueueClosed:
                    break
                t0 = time.perf_counter()
                image = vframe.to_ndarray(format="rgb24")
                frame = Frame(seq=seq, t_capture_ns=t_ns, t_media_s=(t_ns - self._created_ns) / 1e9, image=image)
                self.encoder.encoder = self.engine.encoder  # the avatar's own (changes with the identity)
                frame = self.engine.render(self.encoder.process(tracking.process(frame)))
                self.avatar = Avatar(frame.output, t_ns, seq)
                self.frames_done += 1
                self.work_ms.append((time.perf_counter() - t0) * 1e3)
        except Exception as exc:  # noqa: BLE001 - reported to the page through stats(), logged here
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("%s: reenactment stopped", self.name)
        finally:
            tracking.close()

    def next_avatar(self) -> np.ndarray:
        """The newest avatar (black before the first one); records its age as latency."""
        a = self.avatar
        if a is None:
            return np.zeros((self.engine.size, self.engine.size, 3), np.uint8)
        self.latencies.append((time.perf_counter_ns() - a.t_arrival_ns) / 1e6)
        self.frames_sent += 1
        return a.image

    def stats(self) -> dict:
        lat = np.array(self.latencies) if self.latencies else np.zeros(1)
        elapsed = max(1e-3, time.monotonic() - self._started)
        return {"frames_in": self.frames_in, "frames_done": self.frames_done, "frames_sent": self.frames_sent,
                "dropped": self.queue.dropped, "fps_done": round(self.frames_done / elapsed, 1),
                "work_ms_p50": round(float(np.median(self.work_ms)), 1) if self.work_ms else None,
                "server_latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
                "server_latency_ms_p95": round(float(np.percentile(lat, 95)), 1),
                "identity": self.engine.identity, "controls": self.controls.state(), "error": self.error}

    async def close(self) -> None:
        """Stop reading, stop the worker and wait for it (off the loop)."""
        self._stop.set()
        self.queue.close()
        if self._ingest is not None:
            self._ingest.cancel()
            try:
                await self._ingest
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the track may end in any way
                pass
        if self._worker.is_alive():
            await asyncio.get_running_loop().run_in_executor(None, self._worker.join, 5.0)


def avatar_track(session: PeerSession):
    """An aiortc video track that sends the session's newest avatar at SEND_FPS."""
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    class AvatarTrack(MediaStreamTrack):
        kind = "video"

        def __init__(self):
            super().__init__()
            self._start: float | None = None
            self._n = 0

        async def recv(self):
            if self.readyState != "live":
                raise MediaStreamError
            if self._start is None:
                self._start = time.monotonic()
            else:
                self._n += 1
                wait = self._start + self._n / SEND_FPS - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            frame = av.VideoFrame.from_ndarray(session.next_avatar(), format="rgb24")
            frame.pts = int(self._n * CLOCK / SEND_FPS)
            frame.time_base = fractions.Fraction(1, CLOCK)
            return frame

    return AvatarTrack()
