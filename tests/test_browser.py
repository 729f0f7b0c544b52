"""End to end in a real browser: headless Chromium (Debian's, driven by Playwright, which downloads no
browser) with a fake camera playing a face video, connects to `live serve`; reenacted frames come back
(a face is found in a frame grabbed from the page's video element) and the page's stats update."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from conftest import run_py

pytest.importorskip("aiortc", reason="needs live[webrtc]")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (live[test])")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (.ci/run installs Debian's)")

from rtc_client import face_frames, start_server, stop_server  # noqa: E402

GRAB_JS = """() => {
  const v = document.getElementById('avatar');
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  c.getContext('2d').drawImage(v, 0, 0);
  return c.toDataURL('image/png');
}"""


def write_y4m(path: Path, frames, fps: int = 25) -> Path:
    """Frames ([H,W,3] uint8 RGB) as a raw YUV4MPEG2 4:2:0 file (Chromium's fake camera format)."""
    import cv2

    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def test_browser_page_shows_the_avatar_and_stats(tmp_path):
    y4m = write_y4m(tmp_path / "face.y4m", face_frames(50, 256))
    proc, base = start_server()
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={y4m}"])
            try:
                page = browser.new_page()
                page.goto(base)
                page.click("#start")
                page.wait_for_function("window.liveStats.framesReceived > 30 && window.liveStats.serverFramesDone > 5"
                                       " && window.liveStats.latencyMs !== null", timeout=120_000)
                png = base64.b64decode(page.evaluate(GRAB_JS).split(",", 1)[1])
                done = int(page.inner_text("#done"))
                latency = page.inner_text("#latency")
                error = page.inner_text("#error")
            finally:
                browser.close()
    finally:
        out = stop_server(proc)
    assert done > 5 and latency.endswith("ms") and not error, (done, latency, error)
    assert "Traceback" not in out
    grab = tmp_path / "grab.png"
    grab.write_bytes(png)
    res = run_py(f"""
import json, cv2
from live.assets import AssetStore
from live.landmarker import FaceTracker
t = FaceTracker(AssetStore(progress=False).resolve("face_landmarker"), video=False)
img = cv2.cvtColor(cv2.imread({str(grab)!r}), cv2.COLOR_BGR2RGB)
print(json.dumps({{"faces": len(t.detect(img, 0.0)), "shape": list(img.shape)}}))
""")
    assert res["faces"] == 1 and res["shape"][:2] == [720, 1280], res  # the 16:9 webcam picture


PLAY_JS = """async () => {
  const v = document.getElementById('v');
  try { await v.play(); } catch (e) { return {error: String(e)}; }
  await new Promise(r => setTimeout(r, 600));
  return {width: v.videoWidth, height: v.videoHeight, time: v.currentTime, error: v.error && v.error.code};
}"""


def test_a_written_video_plays_in_the_browser(tmp_path, clip, landmarker_path):
    """`-o out.mp4` plays in Chromium's <video> (OpenCV's MPEG-4 Part 2 file did not: "no supported sources")."""
    from conftest import run_live

    out = tmp_path / "tracked.mp4"
    r = run_live("track", str(clip), "-o", str(out), "--asset", f"face_landmarker={landmarker_path}", timeout=180)
    assert r.returncode == 0, r.stderr
    page_file = tmp_path / "page.html"
    page_file.write_text('<video id="v" src="tracked.mp4" muted playsinline></video>')
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            got = page.evaluate(PLAY_JS)
        finally:
            browser.close()
    assert "error" not in got or got["error"] is None, got
    assert (got["width"], got["height"]) == (256, 256) and got["time"] > 0.2, got
