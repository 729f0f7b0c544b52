"""The virtual webcam sink through pyvirtualcam's real Camera, with an in-memory backend registered in place
of v4l2loopback (this kernel cannot load it), plus a device test where a loopback device exists."""

from __future__ import annotations

import glob
import time

import numpy as np
import pytest

from conftest import run_live

pyvirtualcam = pytest.importorskip("pyvirtualcam", reason="needs live[vcam] (pyvirtualcam)")

from live.frames import Frame  # noqa: E402
from live.stages.vcam import VcamError, VcamSink, wait_frames  # noqa: E402


class MemoryCamera:
    """A pyvirtualcam backend that keeps what it is sent (bytes and times)."""

    instances: list = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.name = device or "memory0"
        self.frames: list[bytes] = []
        self.times: list[float] = []
        self.closed = False
        MemoryCamera.instances.append(self)

    def send(self, frame):
        self.frames.append(frame.tobytes())
        self.times.append(time.perf_counter())

    def close(self):
        self.closed = True

    def device(self):
        return self.name

    def native_fourcc(self):
        return self.fourcc


class NoDevice:
    def __init__(self, **kw):
        raise RuntimeError("No v4l2 loopback device found at /dev/video[0-99]")


pyvirtualcam.register_backend("memory", MemoryCamera)
pyvirtualcam.register_backend("nodevice", NoDevice)


def _frame(seq: int, value: int) -> Frame:
    img = np.full((48, 64, 3), value, np.uint8)
    img[0, 0] = (seq % 256, 1, 2)
    return Frame(seq=seq, t_capture_ns=time.perf_counter_ns(), t_media_s=seq / 30, image=img * 0, output=img)


def test_frames_arrive_byte_exact_and_paced():
    sink = VcamSink(64, 48, fps=40, backend="memory")
    sink.start()
    cam = MemoryCamera.instances[-1]
    try:
        sent = []
        for i in range(5):
            f = _frame(i, 10 * i)
            sink.process(f)
            sent.append(f.output.tobytes())
            assert wait_frames(sink, sink.sent + 2)  # the camera ticks on its own
        time.sleep(1.0)  # no new frames: the last one is repeated at the camera's rate
    finally:
        sink.close()
    assert cam.closed
    distinct = list(dict.fromkeys(cam.frames))
    assert distinct[0] == bytes(64 * 48 * 3)  # black until the first avatar
    assert distinct[1:] == sent  # every frame we gave, byte-exact, in order
    gaps = np.diff(cam.times[5:])
    fps = 1.0 / np.mean(gaps)
    assert abs(fps - 40) / 40 < 0.10, fps
    assert sink.repeated > 30 and sink.received == 5


def test_wrong_shapes_are_rejected():
    sink = VcamSink(64, 48, fps=30, backend="memory")
    sink.start()
    try:
        with pytest.raises(ValueError, match=r"\[48,64,3\] uint8"):
            sink.send_image(np.zeros((48, 64, 4), np.uint8))
        with pytest.raises(ValueError, match="uint8"):
            sink.send_image(np.zeros((48, 64, 3), np.float32))
        big = _frame(0, 50).replace(output=np.full((96, 128, 3), 50, np.uint8))
        sink.process(big)  # a pipeline frame of another size is resized to the camera's
        sink.process(big.replace(output=None))  # no avatar: the driver's picture is never sent
        assert sink.received == 1
    finally:
        sink.close()
    with pytest.raises(ValueError, match="fps"):
        VcamSink(64, 48, fps=0)


def test_no_device_gives_the_setup_line():
    sink = VcamSink(64, 48, backend="nodevice")
    with pytest.raises(VcamError) as exc:
        sink.start()
    text = str(exc.value)
    assert "modprobe v4l2loopback devices=1 video_nr=" in text and "card_label=" in text
    assert "exclusive_caps=1" in text and "Zoom" in text and "Meet" in text


def test_cli_without_a_device_says_how_to_set_one_up(tmp_path, clip):
    if glob.glob("/dev/video*"):
        pytest.skip("a video device exists here; the no-device message is tested above")
    r = run_live("run", "--identity", "seed:0", "--input", str(clip), "--vcam", "--max-frames", "3",
                 "--backend", "torch")
    assert r.returncode == 2, r.stderr
    assert "modprobe v4l2loopback" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(not glob.glob("/dev/video*"), reason="no v4l2loopback device on this machine")
def test_real_loopback_device():
    sink = VcamSink(64, 48, fps=30)
    try:
        sink.start()
    except VcamError as exc:
        pytest.skip(f"/dev/video* exists but is not a loopback device: {exc}")
    try:
        sink.process(_frame(0, 99))
        assert wait_frames(sink, 10)
    finally:
        sink.close()
