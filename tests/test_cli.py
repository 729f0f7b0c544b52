import json

import cv2
import pytest

from conftest import SHARED, run_live, stop_with_ctrl_c


def frame_count(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_help_answers_the_basic_questions():
    r = run_live("--help")
    assert r.returncode == 0 and "live track" in r.stdout and "LIVE_CACHE_DIR" in r.stdout
    r = run_live("track", "--help")
    assert r.returncode == 0
    for words in ("camera index", "--jsonl", "--realtime", "--smoothing", "pitch > 0 = chin up"):
        assert words in r.stdout


def test_track_writes_video_and_jsonl(tmp_path, clip, landmarker_path):
    out, jl = tmp_path / "t.mp4", tmp_path / "t.jsonl"
    r = run_live("track", str(clip), "-o", str(out), "--jsonl", str(jl),
                 "--asset", f"face_landmarker={landmarker_path}")
    assert r.returncode == 0, r.stderr
    assert "face found in 30 of 30 frames" in r.stdout and "tracking" in r.stdout and "p50" in r.stdout
    records = [json.loads(line) for line in jl.read_text().splitlines()]
    assert [rec["seq"] for rec in records] == list(range(30))
    for rec in records:
        assert rec["face"] is True and set(rec) >= {"seq", "t_capture_ms", "yaw", "pitch", "roll", "blendshapes"}
        assert len(rec["blendshapes"]) == 52 and isinstance(rec["yaw"], float)
    assert records[0]["t_capture_ms"] == 0 and records[-1]["t_capture_ms"] > 0
    assert frame_count(out) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "t.jsonl", "t.mp4"]  # no partial files


def test_track_bad_inputs_exit_2_with_a_sentence(tmp_path, clip):
    fake = tmp_path / "fake.mp4"
    fake.write_text("hello")
    cases = [
        ([str(tmp_path / "missing.mp4")], "not found"),
        ([str(fake)], "not a readable video"),
        ([str(clip), "-o", str(tmp_path / "no" / "such" / "dir.mp4")], "does not exist"),
        ([str(clip), "-o", str(tmp_path / "out.gif")], "unsupported extension"),
        ([str(clip), "--asset", "nonsense"], "NAME=PATH"),
        ([str(clip), "--smoothing", "-1"], "smoothing strength must be >= 0"),
    ]
    for args, words in cases:
        r = run_live("track", *args, "--offline")
        assert r.returncode == 2, (args, r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_track_offline_without_model_explains(tmp_path, clip):
    r = run_live("track", str(clip), "--offline", "--cache-dir", str(tmp_path / "empty"))
    assert r.returncode == 1
    assert "face_landmarker" in r.stderr and "live assets fetch" in r.stderr and "Traceback" not in r.stderr


def test_ctrl_c_stops_cleanly_and_keeps_the_recording(tmp_path, clip, landmarker_path, recording):
    out = tmp_path / "rec.mp4"
    proc = recording(out, clip, landmarker_path)
    stderr = stop_with_ctrl_c(proc)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert frame_count(out) > 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "rec.mp4"]


@pytest.mark.shared
def test_d3_face_found_in_95_percent(tmp_path, driving_clips, landmarker_path):
    clip = SHARED / "driving" / "d3.mp4"
    if not clip.exists():
        pytest.skip("d3.mp4 not in ../shared/data/driving")
    jl = tmp_path / "t.jsonl"
    r = run_live("track", str(clip), "-o", str(tmp_path / "t.mp4"), "--jsonl", str(jl),
                 "--asset", f"face_landmarker={landmarker_path}")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in jl.read_text().splitlines()]
    assert sum(rec["face"] for rec in records) >= 0.95 * len(records)
