import time

import cv2
import numpy as np
import pytest

from live.samples import moving_clip
from live.stages.capture import CaptureError, open_capture


def read_all(capture):
    capture.start()
    frames = []
    try:
        while (f := capture.read()) is not None:
            frames.append(f)
    finally:
        capture.close()
    return frames


def test_reads_every_frame_of_a_video_in_order(clip):
    frames = read_all(open_capture(str(clip)))
    assert [f.seq for f in frames] == list(range(30))
    assert all(f.image.shape == (256, 256, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [round(f.t_media_s, 4) for f in frames[:3]] == [0.0, round(1 / 30, 4), round(2 / 30, 4)]
    assert all(a.t_capture_ns < b.t_capture_ns for a, b in zip(frames, frames[1:]))
    assert frames[0].timing("capture") is not None


def test_frames_are_rgb(tmp_path):
    path = tmp_path / "red.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    for _ in range(3):
        w.write(np.full((64, 64, 3), (0, 0, 255), np.uint8))  # BGR red
    w.release()
    f = read_all(open_capture(str(path)))[0]
    r, g, b = f.image.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 50 and b < 50


def test_realtime_paces_to_the_file_rate(tmp_path):
    path = moving_clip(tmp_path / "c.avi", frames=10, fps=20, size=64)
    t0 = time.perf_counter()
    frames = read_all(open_capture(str(path), realtime=True))
    elapsed = time.perf_counter() - t0
    assert len(frames) == 10
    assert elapsed >= 0.9 * 9 / 20  # frame 9 is due 0.45 s after frame 0


def test_loop_and_max_frames(tmp_path):
    path = moving_clip(tmp_path / "c.avi", frames=10, size=64)
    frames = read_all(open_capture(str(path), loop=True, max_frames=25))
    assert [f.seq for f in frames] == list(range(25))
    media = [f.t_media_s for f in frames]
    assert all(a < b for a, b in zip(media, media[1:]))  # media time keeps going across loops


def test_image_file_and_folder(tmp_path):
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :, 2] = 255  # BGR red
    cv2.imwrite(str(tmp_path / "a.png"), img)
    cv2.imwrite(str(tmp_path / "b.jpg"), img)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "c.png").write_bytes(b"broken")  # skipped with a warning
    single = read_all(open_capture(str(tmp_path / "a.png")))
    assert len(single) == 1 and single[0].image.shape == (40, 60, 3) and single[0].image[0, 0, 0] == 255
    assert len(read_all(open_capture(str(tmp_path / "a.png"), loop=True, max_frames=5))) == 5
    folder = read_all(open_capture(str(tmp_path)))
    assert len(folder) == 2


def test_grayscale_image_becomes_rgb(tmp_path):
    cv2.imwrite(str(tmp_path / "g.png"), np.full((20, 20), 128, np.uint8))
    f = read_all(open_capture(str(tmp_path / "g.png")))[0]
    assert f.image.shape == (20, 20, 3)


def test_missing_file(tmp_path):
    with pytest.raises(CaptureError, match="not found.*camera index"):
        open_capture(str(tmp_path / "nope.mp4"))


def test_text_file_named_mp4(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n" * 100)
    with pytest.raises(CaptureError, match="not a readable video"):
        open_capture(str(fake))


def test_corrupt_image(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8garbage")
    with pytest.raises(CaptureError, match="not a readable image"):
        open_capture(str(bad))


def test_empty_folder(tmp_path):
    with pytest.raises(CaptureError, match="no images"):
        open_capture(str(tmp_path))


def test_truncated_mp4_is_refused(tmp_path):
    path = moving_clip(tmp_path / "c.mp4", frames=40, size=128)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # mp4v writes its index at the end: nothing decodable remains
    with pytest.raises(CaptureError, match="truncated, corrupt"):
        open_capture(str(path))


def test_truncated_avi_ends_cleanly_and_says_so(tmp_path, caplog):
    path = moving_clip(tmp_path / "c.avi", frames=40, size=128)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    capture = open_capture(str(path))
    frames = read_all(capture)
    assert 5 < len(frames) < 40
    assert capture.truncated
    assert "truncated or corrupt" in caplog.text


def test_camera_that_does_not_exist():
    with pytest.raises(CaptureError, match="camera 97 could not be opened"):
        open_capture("97")


def test_bad_max_frames(clip):
    with pytest.raises(CaptureError, match="max_frames"):
        open_capture(str(clip), max_frames=0)
