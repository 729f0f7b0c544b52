"""A small aiortc client for the tests: sends a face video as its camera, collects the avatar frames."""

from __future__ import annotations

import asyncio
import fractions
import http.client
import json
import socket
import subprocess
import sys
import time

import numpy as np

from conftest import REPO, sigint_default, subprocess_env


def face_frames(n: int = 50, size: int = 256) -> list[np.ndarray]:
    """Frames of the astronaut turning slightly ([size,size,3] uint8 RGB)."""
    import cv2

    from live.samples import astronaut

    base = cv2.resize(astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    out = []
    for i in range(n):
        angle = 6.0 * np.sin(i / 8.0)
        m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
        out.append(cv2.warpAffine(base, m, (size, size), borderMode=cv2.BORDER_REFLECT))
    return out


def camera_track(frames: list[np.ndarray], fps: float = 25.0):
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    class Camera(MediaStreamTrack):
        kind = "video"

        def __init__(self):
            super().__init__()
            self.n = 0
            self.t0 = None

        async def recv(self):
            if self.readyState != "live":
                raise MediaStreamError
            if self.t0 is None:
                self.t0 = time.monotonic()
            else:
                await asyncio.sleep(max(0.0, self.t0 + self.n / fps - time.monotonic()))
            f = av.VideoFrame.from_ndarray(frames[self.n % len(frames)], format="rgb24")
            f.pts, f.time_base = self.n, fractions.Fraction(1, int(fps))
            self.n += 1
            return f

    return Camera()


def count_received(pc) -> dict:
    """Count the frames of every track `pc` receives, in got["n"] (for clients that only need to know they came)."""
    got = {"n": 0}

    @pc.on("track")
    def on_track(track):
        async def pull():
            while True:
                try:
                    await track.recv()
                except Exception:  # noqa: BLE001 - the track ends with the connection
                    return
                got["n"] += 1
        asyncio.ensure_future(pull())
    return got


async def post_json(url: str, payload) -> tuple[int, dict]:
    import aiohttp

    async with aiohttp.ClientSession() as s:
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        async with s.post(url, data=data, headers={"Content-Type": "application/json"}) as r:
            try:
                body = await r.json(content_type=None)
            except (json.JSONDecodeError, ValueError):
                body = {"text": await r.text()}
            return r.status, body


async def session(base: str, seconds: float, controls: list[dict] | None = None, frames=None,
                  controls_after_s: float = 0.0) -> dict:
    """Connect, stream for `seconds`, send `controls` on the data channel (once it is open and `controls_after_s`
    have passed; got["sent_at"]: the index of the first avatar frame received after), close. Returns what came
    back."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection()
    cam = camera_track(frames or face_frames())
    pc.addTrack(cam)
    channel = pc.createDataChannel("control")
    got = {"frames": [], "stats": [], "errors": []}

    @channel.on("message")
    def on_message(message):
        msg = json.loads(message)
        (got["stats"] if msg.get("type") == "stats" else got["errors"]).append(msg)

    tasks = []

    @pc.on("track")
    def on_track(track):
        async def pull():
            while True:
                try:
                    f = await track.recv()
                except Exception:  # noqa: BLE001 - the track ends when we close
                    return
                got["frames"].append(f.to_ndarray(format="rgb24"))
        tasks.append(asyncio.ensure_future(pull()))

    await pc.setLocalDescription(await pc.createOffer())
    status, answer = await post_json(base + "/offer", {"sdp": pc.localDescription.sdp, "type": "offer"})
    got["status"] = status
    if status != 200:
        got["answer"] = answer
        await pc.close()
        return got
    await pc.setRemoteDescription(RTCSessionDescription(**answer))
    t_start = time.monotonic()
    t_end = t_start + seconds
    sent = False
    while time.monotonic() < t_end:
        if not sent and channel.readyState == "open" and controls and time.monotonic() - t_start >= controls_after_s:
            for c in controls:
                channel.send(json.dumps(c))
            sent = True
            got["sent_at"] = len(got["frames"])
        await asyncio.sleep(0.1)
    cam.stop()
    await pc.close()
    for t in tasks:
        t.cancel()
    return got


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*extra: str, timeout: float = 180.0, log_file=None):
    """`live serve` in a subprocess; returns (process, base URL) once /stats answers. Its output goes to a pipe
    read when it stops, or to `log_file` (an open file) for a long, chatty run that would fill the pipe."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "live", "serve", "--port", str(port), "--backend", "torch",
                             *extra], env=subprocess_env(), cwd=REPO, stdout=log_file or subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=sigint_default)
    base = f"http://127.0.0.1:{port}"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"live serve exited: {(proc.stdout.read() if proc.stdout else '')[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/stats")
            if conn.getresponse().status == 200:
                return proc, base
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("live serve did not come up")


def stop_server(proc) -> str:
    """Stop it; its output (empty when it went to a log file)."""
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def get(base: str, path: str) -> tuple[int, bytes]:
    host, port = base.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path)  # sent as is: no client-side path normalisation
    r = conn.getresponse()
    return r.status, r.read()
