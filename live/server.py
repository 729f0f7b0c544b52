"""`live serve`: the WebRTC demo page and its signalling, aiohttp + aiortc.

    GET  /             the page (live/web/index.html) and its own static files, nothing else
    POST /offer        {"sdp", "type": "offer"} -> {"sdp", "type": "answer"}  (aiortc's example protocol)
    GET  /stats        JSON: peers and their stats (also pushed to the page over the "control" channel)

The page sends its camera over a peer connection and gets the avatar back; controls and stats travel on
a data channel named "control" (JSON: {"expression_gain": 1.2}, {"recentre": true}, {"identity":
"NAME"}, NAME one the operator offered; the server answers {"type": "stats", ...} twice a second and
{"type": "error", ...}). Works without STUN on a LAN or loopback. Binds 127.0.0.1 unless told otherwise;
caps peers and drops those that do not connect in time; refuses malformed or oversized offers with 400/413
and a message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from importlib import resources
from pathlib import Path

from live.rtc import FRAME_CHOICES, Engine, PeerSession, avatar_track

log = logging.getLogger(__name__)

MAX_OFFER_BYTES = 64 * 1024  # a browser offer is a few KB
STATS_PERIOD_S = 0.5
STATIC_TYPES = {".html": "text/html", ".js": "application/javascript", ".css": "text/css"}


def rss_mb() -> float | None:
    """This process's resident memory in MiB (Linux), for leak checks."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def open_fds() -> int | None:
    """How many file descriptors this process has open (Linux), for leak checks."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def _libc():
    """glibc's functions, or None on another C library."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


M_ARENA_MAX = -8  # glibc mallopt parameter: how many malloc arenas threads may spread over


def limit_malloc_arenas(arenas: int) -> None:
    """Cap glibc's malloc arenas for a long-running server. Each thread that allocates may get an arena of its
    own (up to 8 per core), and peers come and go on new threads: measured on `live serve` (2 cores), 32
    peers that posted an offer and left grew RSS by 108 MB that never came back with the default arenas, by
    12 MB with 2 (benchmarks/soak.py has the long run)."""
    libc = _libc()
    if libc is not None and not libc.mallopt(M_ARENA_MAX, int(arenas)):
        log.debug("mallopt(M_ARENA_MAX, %d) refused", arenas)


def release_memory() -> None:
    """Collect cycles and hand freed heap pages back to the OS (glibc), so a long-running server's RSS
    reflects what it holds, not what past sessions left in the allocator."""
    import gc

    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def web_root() -> Path:
    return Path(str(resources.files("live") / "web"))


class Server:
    def __init__(self, engine: Engine, max_peers: int = 2, connect_timeout_s: float = 20.0):
        # engine: shared models (its switch_identity raises ValueError for a name it does not offer);
        # max_peers: concurrent peer connections (more are refused); connect_timeout_s: a peer whose connection
        # is not up this long after its offer is dropped (an offer posted and never completed holds no slot).
        if max_peers < 1:
            raise ValueError(f"--max-peers must be at least 1, got {max_peers}")
        self.engine = engine
        self.max_peers = max_peers
        self.connect_timeout_s = connect_timeout_s
        self.peers: dict[object, PeerSession] = {}
        self._count = 0
        self._switching = asyncio.Lock()
        self._timers: set[asyncio.Task] = set()

    def app(self):
        from aiohttp import web

        app = web.Application(client_max_size=MAX_OFFER_BYTES)
        app.router.add_get("/", self.index)
        app.router.add_get("/stats", self.stats)
        app.router.add_post("/offer", self.offer)
        app.router.add_get("/{name}", self.static)
        app.on_shutdown.append(self.shutdown)
        return app

    async def index(self, request):
        from aiohttp import web

        return web.FileResponse(web_root() / "index.html")

    async def static(self, request):
        """Only files that are in live/web by exact name: no folders, no '..'."""
        from aiohttp import web

        name = request.match_info["name"]
        files = {p.name: p for p in web_root().iterdir() if p.is_file() and p.suffix in STATIC_TYPES}
        if name not in files:
            raise web.HTTPNotFound(text="not found")
        return web.FileResponse(files[name], headers={"Content-Type": STATIC_TYPES[files[name].suffix]})

    async def stats(self, request):
        from aiohttp import web

        return web.json_response({"peers": len(self.peers), "max_peers": self.max_peers,
                                  "identity": self.engine.identity, "identities": list(self.engine.identities),
                                  "frames": list(FRAME_CHOICES) if self.engine.config.frame.size else [],
                                  "frame": "x".join(map(str, self.engine.frame)),
                                  "threads": threading.active_count(), "rss_mb": rss_mb(), "open_fds": open_fds(),
                                  "sessions": [s.stats() for s in self.peers.values()]})

    async def offer(self, request):
        from aiohttp import web
        from aiortc import RTCPeerConnection, RTCSessionDescription

        def bad(message: str, status: int = 400):
            return web.json_response({"error": message}, status=status)

        too_large = f"offer too large (over {MAX_OFFER_BYTES} bytes; a browser's is a few KB)"
        if (request.content_length or 0) > MAX_OFFER_BYTES:
            return bad(too_large, status=413)
        try:
            body = await request.read()  # the whole body, however many segments it arrives in (up to the cap)
        except web.HTTPRequestEntityTooLarge:
            return bad(too_large, status=413)
        try:
            params = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return bad('the offer must be JSON: {"sdp": "...", "type": "offer"}')
        if not isinstance(params, dict) or params.get("type") != "offer" or not isinstance(params.get("sdp"), str):
            return bad('the offer must be JSON: {"sdp": "...", "type": "offer"}')
        sdp = params["sdp"]
        if not sdp.startswith("v=0") or "m=video" not in sdp:
            return bad("the SDP offer must start with v=0 and offer a video track (the camera)")
        if len(self.peers) >= self.max_peers:
            return bad(f"too many peers: this server takes {self.max_peers} at a time (--max-peers); "
                       "close another tab or try again later", status=503)
        pc = RTCPeerConnection()
        self._count += 1
        session = PeerSession(self.engine, f"peer{self._count}")
        self.peers[pc] = session

        @pc.on("track")
        def on_track(track):
            if track.kind == "video" and not session.started:
                session.start(track)
                pc.addTrack(avatar_track(session))

        @pc.on("datachannel")
        def on_datachannel(channel):
            if channel.label == "control":
                asyncio.ensure_future(self._serve_channel(channel, session))

        @pc.on("connectionstatechange")
        async def on_state():
            log.info("%s: connection %s", session.name, pc.connectionState)
            if pc.connectionState in ("failed", "closed", "disconnected"):
                await self._close(pc)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            if not session.started:
                raise ValueError("no video track was received in the offer")
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # noqa: BLE001 - aiortc raises many kinds on a malformed SDP: all are the client's
            await self._close(pc)
            reason = str(exc) or f"{type(exc).__name__}, no detail"
            return bad(f"malformed offer ({reason}): send the SDP the browser's createOffer() made")
        log.info("%s: answered (%d/%d peers)", session.name, len(self.peers), self.max_peers)
        timer = asyncio.ensure_future(self._drop_unless_connected(pc, session))
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)
        return web.json_response({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type})

    async def _drop_unless_connected(self, pc, session: PeerSession) -> None:
        """Close a peer that has not connected `connect_timeout_s` after its answer (it posted an offer and went
        away, or its network blocks the media path): it would hold a peer slot until ICE gave up (60-90 s)."""
        await asyncio.sleep(self.connect_timeout_s)
        if self.peers.get(pc) is session and pc.connectionState != "connected":
            log.warning("%s: not connected %g s after its offer (state %s): dropped (--connect-timeout)",
                        session.name, self.connect_timeout_s, pc.connectionState)
            await self._close(pc)

    async def _serve_channel(self, channel, session: PeerSession) -> None:
        @channel.on("message")
        def on_message(message):
            asyncio.ensure_future(self._control(channel, session, message))

        while channel.readyState in ("connecting", "open") and session in self.peers.values():
            if channel.readyState == "open":
                channel.send(json.dumps({"type": "stats", **session.stats()}))
            await asyncio.sleep(STATS_PERIOD_S)

    async def _control(self, channel, session: PeerSession, message) -> None:
        try:
            values = json.loads(message)
            if not isinstance(values, dict):
                raise ValueError("a control message is a JSON object")
            spec = values.pop("identity", None)
            if spec is not None:
                await self._switch(str(spec))
            frame = values.pop("frame", None)
            if frame is not None:
                await self._frame(session, str(frame))
            values.pop("type", None)
            session.controls.update(**values)
        except (ValueError, json.JSONDecodeError) as exc:
            if channel.readyState == "open":
                channel.send(json.dumps({"type": "error", "error": str(exc)}))

    async def _switch(self, name: str) -> None:
        if name not in self.engine.identities:  # names only: a client never names a path on this machine
            raise ValueError(f"unknown identity {name[:40]!r}: this server offers {', '.join(self.engine.identities)}")
        if self._switching.locked():
            raise ValueError("an identity switch is already under way; try again in a few seconds")
        async with self._switching:
            if name == self.engine.identity:
                return
            log.info("switching identity to %s", name)
            await asyncio.get_running_loop().run_in_executor(None, self.engine.switch_identity, name)

    async def _frame(self, session: PeerSession, spec: str) -> None:
        if spec not in FRAME_CHOICES:  # sizes only from the list: each costs a scene (memory, a second to make)
            raise ValueError(f"frame must be one of {', '.join(FRAME_CHOICES)}, got {spec[:20]!r}")
        size = tuple(int(v) for v in spec.split("x"))
        if size == session.frame:
            return
        async with self._switching:  # not while the identity changes under it
            log.info("%s: frame %s", session.name, spec)
            await asyncio.get_running_loop().run_in_executor(None, self.engine.set_frame, session, size)

    async def _close(self, pc) -> None:
        session = self.peers.pop(pc, None)
        for sender in pc.getSenders():
            if sender.track is not None:
                sender.track.stop()
        await pc.close()
        if session is not None:
            await session.close()
            log.info("%s: closed (%d peers left)", session.name, len(self.peers))
            await asyncio.get_running_loop().run_in_executor(None, release_memory)

    async def shutdown(self, app=None) -> None:
        for timer in list(self._timers):
            timer.cancel()
        await asyncio.gather(*(self._close(pc) for pc in list(self.peers)))
