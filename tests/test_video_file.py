"""Video files play everywhere: H.264 in .mp4 with its index at the front, Motion JPEG in .avi."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_live

from live.video_file import VideoFileError, VideoWriter


def smooth_frames(n: int, w: int, h: int) -> list[np.ndarray]:
    """A gradient that slides: something an encoder keeps well, so decoded frames can be compared."""
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    return [np.clip(np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2 + 4 * i], axis=2), 0, 255).astype(np.uint8)
            for i in range(n)]


def decoded(path) -> tuple[str, str, list[np.ndarray], float]:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        return s.codec_context.name, s.codec_context.pix_fmt, frames, float(s.average_rate)


def atoms(path) -> list[bytes]:
    """The top-level MP4 boxes in file order."""
    data, names, i = path.read_bytes(), [], 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        names.append(data[i + 4:i + 8])
        if size < 8:
            break
        i += size
    return names


def test_mp4_is_h264_with_the_index_first_and_odd_sides_made_even(tmp_path):
    frames = smooth_frames(12, 101, 64)
    path = tmp_path / "out.mp4"
    w = VideoWriter(path, 25.0, (101, 64))
    for f in frames:
        w.write(f)
    w.close()
    codec, pix_fmt, got, rate = decoded(path)
    assert (codec, pix_fmt, rate, len(got)) == ("h264", "yuv420p", 25.0, 12)
    assert got[0].shape == (64, 100, 3)  # one column cropped: yuv420p halves both sides
    seen = atoms(path)
    assert seen.index(b"moov") < seen.index(b"mdat"), seen  # plays while it downloads
    err = np.abs(got[5].astype(np.float32) - frames[5][:, :100]).mean()
    assert err < 4.0, err


def test_avi_is_motion_jpeg_and_tiny_frames_are_refused(tmp_path):
    w = VideoWriter(tmp_path / "out.avi", 30.0, (32, 32))
    for f in smooth_frames(3, 32, 32):
        w.write(f)
    w.close()
    assert decoded(tmp_path / "out.avi")[0] == "mjpeg"
    with pytest.raises(VideoFileError, match="cannot be encoded"):
        VideoWriter(tmp_path / "tiny.mp4", 30.0, (8, 8))
    with pytest.raises(VideoFileError, match="unsupported extension"):
        VideoWriter(tmp_path / "x.gif", 30.0, (64, 64))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.avi"]


def test_track_writes_h264_a_browser_plays(tmp_path, clip, landmarker_path):
    out = tmp_path / "tracked.mp4"
    r = run_live("track", str(clip), "-o", str(out), "--asset", f"face_landmarker={landmarker_path}", timeout=180)
    assert r.returncode == 0, r.stderr
    codec, pix_fmt, got, _ = decoded(out)
    assert (codec, pix_fmt, len(got)) == ("h264", "yuv420p", 30)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial left
