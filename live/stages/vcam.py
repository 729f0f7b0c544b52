"""Virtual webcam sink: the avatar as a camera other apps (Zoom, Meet, Teams, OBS) can open.

Uses pyvirtualcam (v4l2loopback on Linux, OBS Virtual Camera on Windows/macOS). A camera must deliver
frames at its own rate whatever the pipeline does, so a pacing thread sends the *latest* avatar at the
camera's fps and repeats the last one when synthesis is late; nothing ever queues up. `process()` only
swaps a reference, so it never blocks the pipeline.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from live.frames import Frame

log = logging.getLogger(__name__)

SETUP_LINUX = ("sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=\"live\" exclusive_caps=1\n"
               "  (then: live run ... --vcam --vcam-device /dev/video10)")
CAVEAT = ("exclusive_caps=1 is what Chrome-based apps (Google Meet, Teams in the browser) need to list the "
          "device, and they only see it while live is sending, so start live first. Zoom lists the device "
          "either way; if an app shows a black or missing camera, reload the module with the other setting "
          "(sudo modprobe -r v4l2loopback first).")


class VcamError(ValueError):
    """No usable virtual camera: says how to set one up."""


def no_device_message(detail: str) -> str:
    return (f"no virtual camera device is available ({detail.strip() or 'pyvirtualcam found none'}).\n"
            f"On Linux, load the v4l2loopback kernel module once (package v4l2loopback-dkms):\n  {SETUP_LINUX}\n"
            f"{CAVEAT}\nOn Windows and macOS, install OBS Studio and start its Virtual Camera once.")


class VcamSink:
    """Pipeline stage: sends the avatar to a virtual camera (black until the first avatar; the driver's own
    picture is never sent)."""

    name = "vcam"

    def __init__(self, width: int, height: int, fps: float = 30.0, device: str | None = None,
                 backend: str | None = None):
        # width, height: camera frame size (the avatar size); fps: camera frame rate (frames are repeated
        # to keep it); device: e.g. /dev/video10 (default: the first free loopback device);
        # backend: pyvirtualcam backend name (default: whatever the platform has; tests register their own).
        if width < 16 or height < 16:
            raise ValueError(f"virtual camera size must be at least 16x16, got {width}x{height}")
        if not 1.0 <= fps <= 120.0:
            raise ValueError(f"virtual camera fps must be within 1..120, got {fps:g}")
        self.width, self.height, self.fps = width, height, fps
        self.device, self.backend = device, backend
        self._camera = None
        self._latest: np.ndarray = np.zeros((height, width, 3), np.uint8)
        self._fresh = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = self.repeated = self.received = 0
        self.error: BaseException | None = None

    def start(self) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            raise VcamError("the virtual camera needs pyvirtualcam: pip install 'live[vcam]'") from None
        try:
            self._camera = pyvirtualcam.Camera(self.width, self.height, self.fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                               device=self.device, backend=self.backend)
        except (RuntimeError, OSError) as exc:
            raise VcamError(no_device_message(str(exc))) from None
        except KeyError:
            raise VcamError(f"unknown virtual camera backend {self.backend!r}") from None
        log.info("virtual camera %s (%s): %dx%d at %g fps", self._camera.device, self._camera.backend,
                 self.width, self.height, self.fps)
        self._thread = threading.Thread(target=self._pace, name="vcam-pacer", daemon=True)
        self._thread.start()

    @property
    def device_name(self) -> str | None:
        return None if self._camera is None else self._camera.device

    def send_image(self, image: np.ndarray) -> None:
        """Make `image` ([height,width,3] uint8 RGB) the frame the camera shows from its next tick on."""
        if image.dtype != np.uint8 or image.shape != (self.height, self.width, 3):
            raise ValueError(f"the virtual camera takes [{self.height},{self.width},3] uint8 RGB frames, got "
                             f"{list(image.shape)} {image.dtype}")
        with self._lock:
            self._latest = np.ascontiguousarray(image)
            self._fresh = True
            self.received += 1

    def process(self, frame: Frame) -> Frame:
        if self.error is not None:
            raise RuntimeError(f"virtual camera failed: {self.error}")
        image = frame.output
        if image is None:  # never show the driver's own face on the call: keep the last avatar (or black)
            return frame
        if image.shape[:2] != (self.height, self.width):
            import cv2

            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        self.send_image(image)
        return frame

    def _pace(self) -> None:
        cam = self._camera
        try:
            while not self._stop.is_set():
                with self._lock:
                    image, fresh, self._fresh = self._latest, self._fresh, False
                cam.send(image)
                self.sent += 1
                self.repeated += 0 if fresh else 1
                cam.sleep_until_next_frame()
        except Exception as exc:  # noqa: BLE001 - reported to the pipeline thread by process()
            log.error("virtual camera stopped: %s", exc)
            self.error = exc

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._camera is not None:
            self._camera.close()
            self._camera = None
            log.info("virtual camera closed: %d frames sent (%d repeats), %d avatar frames received", self.sent,
                     self.repeated, self.received)


def wait_frames(sink: VcamSink, count: int, timeout_s: float = 5.0) -> bool:
    """Wait until the camera has sent `count` frames (for tests and warm-up)."""
    end = time.monotonic() + timeout_s
    while sink.sent < count and time.monotonic() < end:
        time.sleep(0.005)
    return sink.sent >= count
