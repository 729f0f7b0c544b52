"""WebRTC sessions: a browser's camera track in, the reenacted avatar track out.

Latency is the point, and aiortc's known pitfall is a consumer slower than the incoming track, which
makes frames pile up in its decoder queue and latency grow without bound. So each peer is a `Pipeline`
like `live run`'s (latest-only queues, pacing, `Stats`), whose source is the incoming track and whose
sink is the outgoing one:

    loop thread:      ingest task   await track.recv() as fast as frames come -> LatestQueue(1) (drops counted)
    pipeline threads: TrackSource -> tracking -> encoder -> synthesis (shared by all peers, locked) -> AvatarSlot
    loop thread:      AvatarTrack.recv(): each new avatar as it comes (at most 30 fps; the last one again after 0.5 s)

Nothing heavy runs on the event loop: frame conversion and all model work happen on the pipeline's threads.
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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from live.assets import AssetStore
from live.config import Config
from live.controls import Controls
from live.frames import Frame
from live.pipeline import Pipeline
from live.queues import LatestQueue, QueueClosed
from live.stage import Stage, StageError

log = logging.getLogger(__name__)
STATS_WINDOW = 300  # a peer's stats cover its latest frames (~10 s at 30 fps)

SEND_FPS = 30  # the most frames a second the outgoing track sends
FRAME_CHOICES = ("1280x720", "960x540", "640x480", "640x360")  # frame sizes a page may ask for (each costs a scene)
KEEPALIVE_S = 0.5  # ... and the longest it waits for a new avatar before sending the last one again
POLL_S = 1 / 200  # how often the track looks for a new avatar while it waits
CLOCK = 90_000


@dataclass
class Avatar:
    image: np.ndarray  # [S,S,3] uint8 RGB
    t_arrival_ns: int  # when the driving frame that made it reached the server
    seq: int


class SharedStage:
    """A started stage that several pipelines run in turn, one frame at a time; they neither start nor close
    it (its owner does)."""

    def __init__(self, stage: Stage):
        self.stage = stage
        self.name = stage.name
        self.lock = threading.Lock()

    def start(self) -> None:
        pass

    def process(self, frame: Frame) -> Frame | None:
        with self.lock:
            return self.stage.process(frame)

    def close(self) -> None:
        pass


class Engine:
    """What all peers share: the avatar of the current identity and its synthesis (one, locked)."""

    def __init__(self, config: Config, store: AssetStore, identities: dict[str, tuple[int, Path | None]]):
        # config: every peer's settings (its synthesis seed and identity file are set per identity);
        # store: the models; identities: name -> (seed, identity file or None) of every identity clients may
        # switch to, the first shown at start.
        if not identities:
            raise ValueError("the server needs at least one identity")
        self.config, self.store, self.identities = config, store, dict(identities)
        self.frame = config.frame.size or (config.synthesis.size, config.synthesis.size)  # (width, height) sent
        self._lock = threading.Lock()
        self._sessions: set[PeerSession] = set()
        self._meshes: dict = {}  # identity name -> the warp's AvatarMesh (None: tracked on every render)
        self._scenes: dict = {}  # (identity name, frame size) -> its live.compose.Scene (made once, shared by the
        # peers); identity name -> the scene's parts (live.stages.scene_parts)
        self.identity = next(iter(self.identities))
        self.avatar, self.synthesis, self.avatar_config = self._load(self.identity)

    def _load(self, name: str):
        """(avatar, started shared synthesis stage, its config) of an offered identity (seconds: may fit the
        avatar)."""
        from live.avatar import load_avatar
        from live.stages import synthesis_stage

        if name not in self.identities:
            raise ValueError(f"unknown identity {name!r}: this server offers {', '.join(self.identities)}")
        seed, identity_file = self.identities[name]
        config = replace(self.config, synthesis=replace(self.config.synthesis, seed=seed,
                                                        identity_file=identity_file))
        avatar = load_avatar(config, self.store)
        synthesis = synthesis_stage(config, avatar)
        synthesis.start()
        if config.frame.size is not None:  # made here, not on the peers' threads
            self.scene(name, config.frame.size, config, avatar)
        if config.warp.enabled and name not in self._meshes:  # the warp's probe of the avatar (3-5 s), made once
            from live.stages import warp_stage

            probe = warp_stage(config, self.store, avatar)
            probe.start()
            probe.close()
            with self._lock:
                self._meshes[name] = probe.avatar_mesh
        return avatar, SharedStage(synthesis), config

    def scene(self, name: str, size: tuple[int, int], config: Config, avatar):
        """The compose stage's scene of identity `name` at frame `size`, made the first time it is asked for (its
        costly parts once per identity: another size then takes ~50 ms)."""
        from live.stages import rest_scene, scene_parts

        with self._lock:
            made, parts = self._scenes.get((name, size)), self._scenes.get(name)
        if made is None:
            parts = parts or scene_parts(config, self.store, avatar)
            made = rest_scene(replace(config, frame=replace(config.frame, size=size)), self.store, avatar, parts)()
            with self._lock:
                self._scenes[name], self._scenes[(name, size)] = parts, made
        return made

    def stages(self, controls: Controls, size: tuple[int, int] | None = None) -> list[Stage]:
        """A new peer's tracking, encoder, (shared) synthesis and own warp and compose stages for the current
        identity; size: its frame (default: the server's)."""
        from live.stages import encoder_stage, tracking_stage, warp_stage

        with self._lock:
            avatar, synthesis, config, name = self.avatar, self.synthesis, self.avatar_config, self.identity
        stages = [tracking_stage(self.config, self.store), encoder_stage(self.config, avatar, controls), synthesis]
        if self.config.warp.enabled:
            stages.append(warp_stage(config, self.store, avatar, controls, self._meshes.get(name)))
        if self.config.frame.size is not None:
            stages.append(self._compose_stage(self.scene(name, size or self.frame, config, avatar), config, controls))
        return stages

    @staticmethod
    def _compose_stage(scene, config: Config, controls: Controls) -> Stage:
        """A peer's compose stage on a shared scene."""
        from live.stages.compose import ComposeStage

        return ComposeStage(lambda: scene, controls, fixed_head=config.frame.fixed_head,
                            release_s=config.encoder.release_s)

    def attach(self, session: PeerSession) -> None:
        with self._lock:
            self._sessions.add(session)

    def detach(self, session: PeerSession) -> None:
        with self._lock:
            self._sessions.discard(session)

    def switch_identity(self, name: str) -> None:
        """Load another offered identity (seconds), then every peer's pipeline replaces its encoder and synthesis.
        Raises ValueError for a name the operator did not offer."""
        from live.stages import warp_stage

        avatar, synthesis, config = self._load(name)
        with self._lock:
            sessions = list(self._sessions)
        scenes = {s.frame: self.scene(name, s.frame, config, avatar) for s in sessions} \
            if self.config.frame.size is not None else {}
        with self._lock:
            self.avatar, self.synthesis, self.avatar_config, self.identity = avatar, synthesis, config, name
        for session in sessions:
            session.pipeline.replace("encoder", lambda old: old.with_encoder(avatar.encoder))
            session.pipeline.replace("synthesis", lambda old: synthesis)
            if self.config.warp.enabled:
                session.pipeline.replace("warp", lambda old: warp_stage(config, self.store, avatar, old.controls,
                                                                        self._meshes.get(name)))
            if self.config.frame.size is not None:
                scene = scenes[session.frame]
                session.pipeline.replace("compose", lambda old, sc=scene: self._compose_stage(sc, config,
                                                                                               old.controls))

    def set_frame(self, session: PeerSession, size: tuple[int, int]) -> None:
        """The peer's frame becomes `size` (its scene made first: a second for a new size); ValueError when this
        server sends the avatar's square."""
        if self.config.frame.size is None:
            raise ValueError("this server sends the avatar's square (--frame avatar): there is no frame size to choose")
        with self._lock:
            name, config, avatar = self.identity, self.avatar_config, self.avatar
        scene = self.scene(name, size, config, avatar)
        session.frame = size
        session.pipeline.replace("compose", lambda old: self._compose_stage(scene, config, old.controls))


class TrackSource:
    """The pipeline's source: the newest frame of the browser's camera (fed by the event loop)."""

    fps = SEND_FPS

    def __init__(self, name: str):
        self.name = f"{name} camera"
        self.queue = LatestQueue(f"{name} camera->pipeline")
        self._created_ns = time.perf_counter_ns()  # media time of a frame: its arrival since this moment

    def start(self) -> None:
        pass

    def read(self) -> Frame | None:
        """The next frame (converted here, off the event loop); None once the track ended."""
        try:
            seq, t_ns, vframe = self.queue.get()
        except QueueClosed:
            return None
        image = vframe.to_ndarray(format="rgb24")
        return Frame(seq=seq, t_capture_ns=t_ns, t_media_s=(t_ns - self._created_ns) / 1e9, image=image)

    def close(self) -> None:
        self.queue.close()


class AvatarSlot:
    """The pipeline's sink: keeps the newest avatar for the outgoing track."""

    name = "avatar"

    def __init__(self):
        self.avatar: Avatar | None = None

    def start(self) -> None:
        pass

    def process(self, frame: Frame) -> Frame:
        self.avatar = Avatar(frame.output, frame.t_capture_ns, frame.seq)
        return frame

    def close(self) -> None:
        pass


class PeerSession:
    """One connected browser: its pipeline (tracker, encoder state, controls), the thread running it, stats."""

    def __init__(self, engine: Engine, name: str):
        self.engine = engine
        self.name = name
        self.controls = Controls(warp_strength=engine.config.warp.strength)
        self.source = TrackSource(name)
        self.slot = AvatarSlot()
        self.frame = engine.frame  # (width, height) this peer is sent
        self.pipeline = Pipeline(self.source, [*engine.stages(self.controls, self.frame), self.slot],
                                 warmup=engine.config.pipeline.warmup, stats_window=STATS_WINDOW)
        self.frames_in = self.frames_sent = 0
        self.latencies = collections.deque(maxlen=STATS_WINDOW)  # server arrival -> avatar sent, ms
        self.error: str | None = None
        self._worker = threading.Thread(target=self._run, name=f"rtc-{name}", daemon=True)
        self._ingest: asyncio.Task | None = None
        self._started = time.monotonic()

    @property
    def started(self) -> bool:
        """True once a camera track is being read."""
        return self._ingest is not None

    def start(self, track) -> None:
        """Begin reading `track` (the browser camera); call on the event loop."""
        self.engine.attach(self)
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
                    self.source.queue.put((seq, time.perf_counter_ns(), frame))
                except QueueClosed:
                    return
                seq += 1
        except MediaStreamError:
            log.info("%s: camera track ended", self.name)

    def _run(self) -> None:
        try:
            self.pipeline.run()
        except StageError as exc:  # reported to the page through stats(), logged by the pipeline
            self.error = f"{type(exc.error).__name__}: {exc}"

    def newest(self) -> int | None:
        """The sequence number of the newest avatar, or None before the first."""
        a = self.slot.avatar
        return None if a is None else a.seq

    def next_avatar(self) -> np.ndarray:
        """The newest avatar (black before the first one); records its age as latency."""
        a = self.slot.avatar
        if a is None:
            return np.zeros((self.frame[1], self.frame[0], 3), np.uint8)
        self.latencies.append((time.perf_counter_ns() - a.t_arrival_ns) / 1e6)
        self.frames_sent += 1
        return a.image

    def stats(self) -> dict:
        lat = np.array(self.latencies) if self.latencies else np.zeros(1)
        elapsed = max(1e-3, time.monotonic() - self._started)
        summary = self.pipeline.summary()
        done = self.pipeline.stats.arrived
        work = [s["p50_ms"] for s in summary["stages"].values()]
        return {"frames_in": self.frames_in, "frames_done": done, "frames_sent": self.frames_sent,
                "dropped": self.source.queue.dropped + sum(summary["dropped"].values()),
                "fps_done": round(done / elapsed, 1), "work_ms_p50": round(sum(work), 1) if work else None,
                "server_latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
                "server_latency_ms_p95": round(float(np.percentile(lat, 95)), 1),
                "pipeline": summary, "identity": self.engine.identity, "controls": self.controls.state(),
                "frame": "x".join(map(str, self.frame)),
                "error": self.error}

    async def close(self) -> None:
        """Stop reading, stop the pipeline and wait for it (off the loop)."""
        self.engine.detach(self)
        self.source.close()
        self.pipeline.stop()
        if self._ingest is not None:
            self._ingest.cancel()
            try:
                await self._ingest
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the track may end in any way
                pass
        if self._worker.is_alive():
            await asyncio.get_running_loop().run_in_executor(None, self._worker.join, 15.0)


def avatar_track(session: PeerSession):
    """An aiortc video track that sends the session's newest avatar as it is made, at most SEND_FPS and at least every
    KEEPALIVE_S: a frame is encoded (VP8, the costly part at 1280x720) only when there is a new avatar to show."""
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    class AvatarTrack(MediaStreamTrack):
        kind = "video"

        def __init__(self):
            super().__init__()
            self._start: float | None = None
            self._sent_at = 0.0
            self._sent_seq: int | None = None

        async def recv(self):
            if self.readyState != "live":
                raise MediaStreamError
            now = time.monotonic()
            if self._start is None:
                self._start = now
            else:
                earliest, latest = self._sent_at + 1 / SEND_FPS, self._sent_at + KEEPALIVE_S
                while now < earliest or (now < latest and session.newest() == self._sent_seq):
                    await asyncio.sleep(max(0.0, earliest - now) if now < earliest else POLL_S)
                    now = time.monotonic()
                    if self.readyState != "live":
                        raise MediaStreamError
            self._sent_at, self._sent_seq = now, session.newest()
            frame = av.VideoFrame.from_ndarray(session.next_avatar(), format="rgb24")
            frame.pts = int((now - self._start) * CLOCK)
            frame.time_base = fractions.Fraction(1, CLOCK)
            return frame

    return AvatarTrack()
