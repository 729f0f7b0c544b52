"""Encoder, encoder stage, `live demo` and `live run` end to end (MediaPipe in subprocesses)."""

import json

import numpy as np
import pytest

from conftest import run_live, run_py
from live.frames import Face, Frame
from live.models.encoder import META_PATH, NUM_SIGNALS, LinearEncoder
from live.stages.encoder import EncoderStage


def face(yaw=0.0, smile=0.0):
    b = np.zeros(52, np.float32)
    b[44] = b[45] = smile
    return Face(landmarks=np.zeros((478, 3), np.float32), blendshapes=b, yaw=yaw, pitch=0.0, roll=0.0,
                translation=(0, 0, 0), matrix=np.eye(4, dtype=np.float32))


def frame(i, f):
    return Frame(seq=i, t_capture_ns=i, t_media_s=i / 25, image=np.zeros((4, 4, 3), np.uint8), face=f)


def test_weights_load_and_match_the_generator():
    from live.assets import AssetStore
    from live.models.generator import load_mobilestylegan

    gen = load_mobilestylegan(AssetStore(progress=False))
    enc = LinearEncoder.load(generator_sha256=gen.source_sha256)
    meta = json.loads(META_PATH.read_text())
    assert enc.k == meta["k"] and enc.matrix.shape == (NUM_SIGNALS, enc.k * 512)
    assert meta["metrics"]["yaw"]["corr"] > 0.8 and meta["data"]["samples_used"] > 500
    with pytest.raises(ValueError, match="fitted for generator"):
        LinearEncoder.load(generator_sha256="0" * 64)


def test_zero_change_gives_zero_offset_and_relative_mode_ignores_the_drivers_face():
    enc = LinearEncoder.load()
    stage = EncoderStage(enc)
    first = stage.process(frame(0, face(yaw=12.0, smile=0.3)))  # the driver's own neutral
    assert np.array_equal(first.offset, np.zeros((1, enc.k, 512), np.float32))
    moved = stage.process(frame(1, face(yaw=22.0, smile=0.3)))
    assert np.abs(moved.offset).max() > 0
    stage.recentre()
    again = stage.process(frame(2, face(yaw=22.0, smile=0.3)))
    assert np.array_equal(again.offset, np.zeros_like(again.offset))


def test_stage_keeps_the_signal_change_it_asked_last():
    stage = EncoderStage(LinearEncoder.load())
    assert stage.last_delta is None
    stage.process(frame(0, face(yaw=12.0, smile=0.3)))
    assert not stage.last_delta.any()  # the driver's own neutral
    stage.process(frame(1, face(yaw=18.0, smile=0.5)))
    assert stage.last_delta[52] == pytest.approx(6.0 / 30) and stage.last_delta[44] == pytest.approx(0.2)
    stage.process(frame(2, None))
    assert stage.last_delta is None  # no face, nothing asked


def test_lost_face_eases_back_to_neutral():
    stage = EncoderStage(LinearEncoder.load(), release_s=0.2)
    stage.process(frame(0, face()))
    moved = stage.process(frame(1, face(yaw=20.0))).offset
    sizes = [np.abs(stage.process(frame(i, None)).offset).max() for i in range(2, 45)]  # 1.7 s = 8.6 tau
    assert sizes[0] < np.abs(moved).max() and sizes[-1] < 1e-3 * np.abs(moved).max()
    assert all(a >= b for a, b in zip(sizes, sizes[1:]))  # monotonic, no jump


def test_gain_zero_keeps_the_identity():
    stage = EncoderStage(LinearEncoder.load(), expression_gain=0.0, pose_gain=0.0)
    stage.process(frame(0, face()))
    assert not np.abs(stage.process(frame(1, face(yaw=25.0, smile=0.9))).offset).any()


def test_demo_writes_a_video_of_faces(tmp_path, landmarker_path):
    """The README's main command, with its default backend (auto: the fastest backend timed on this CPU)."""
    out = tmp_path / "demo.mp4"
    r = run_live("demo", "--seed", "2", "--fps", "4", "-o", str(out), timeout=600)
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and "fps" in r.stdout
    import av

    with av.open(str(out)) as c:  # H.264, which browsers and players take (OpenCV wrote MPEG-4 Part 2)
        assert (c.streams.video[0].codec_context.name, c.streams.video[0].codec_context.pix_fmt) == ("h264", "yuv420p")
    res = run_py(f"""
import json, cv2
from live.landmarker import FaceTracker
cap = cv2.VideoCapture({str(out)!r})
frames = []
while True:
    ok, f = cap.read()
    if not ok:
        break
    frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
t = FaceTracker({str(landmarker_path)!r}, video=False)
faces = [len(t.detect(frames[i], 0.0)) for i in range(0, len(frames), 4)]
t.close()
print(json.dumps({{"n": len(frames), "shape": list(frames[0].shape), "faces": faces}}))
""")
    from live.demo import ScriptedSource

    assert res["n"] == ScriptedSource(fps=4).frames == 47 and res["shape"] == [256, 256, 3]
    assert sum(res["faces"]) >= len(res["faces"]) - 1


def test_run_transfers_a_head_turn(tmp_path, landmarker_path):
    """A generated driver turning right makes the avatar turn right (tracked on both sides)."""
    res = run_py(f"""
import json, cv2, numpy as np, torch, subprocess, sys
from live.assets import AssetStore
from live.models.generator import load_mobilestylegan
from live.models.encoder import LinearEncoder, signal_vector
from live.models.early_exit import load_heads, render_styles
from live.render import seed_identity, to_uint8
from live.landmarker import FaceTracker
torch.set_grad_enabled(False)
gen = load_mobilestylegan(AssetStore(progress=False)); enc = LinearEncoder.load(); heads = load_heads()
driver = seed_identity(gen, 40)
w = cv2.VideoWriter({str(tmp_path / 'driver.avi')!r}, cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
for t in range(20):
    yaw = 0.0 if t < 5 else 18.0 * min(1.0, (t - 5) / 5)
    delta = signal_vector(np.zeros(52, np.float32), np.array([yaw, 0, 0], np.float32))
    st = driver.clone(); st[:, :enc.k] += torch.from_numpy(enc(delta))
    w.write(cv2.cvtColor(to_uint8(render_styles(gen, st, 256, heads).numpy()), cv2.COLOR_RGB2BGR))
w.release()
r = subprocess.run([sys.executable, "-m", "live", "run", "--identity", "seed:7", "--backend", "torch", "--input",
                    {str(tmp_path / 'driver.avi')!r}, "-o", {str(tmp_path / 'out.mp4')!r}],
                   capture_output=True, text=True, timeout=300)
assert r.returncode == 0, r.stderr
tr = FaceTracker({str(landmarker_path)!r}, video=False)
def yaws(path):
    cap = cv2.VideoCapture(path); out = []
    while True:
        ok, f = cap.read()
        if not ok: break
        fs = tr.detect(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), 0.0)
        out.append(fs[0].yaw if fs else None)
    return out
print(json.dumps({{"driver": yaws({str(tmp_path / 'driver.avi')!r}), "avatar": yaws({str(tmp_path / 'out.mp4')!r}),
                  "stdout": r.stdout[-400:]}}))
""", timeout=600)
    d, a = res["driver"], res["avatar"]
    assert len(a) == 20 and None not in a and "fps" in res["stdout"]
    assert d[-1] - d[0] > 8  # the driver really turned
    assert a[-1] - a[0] > 5  # ...and so did the avatar, the same way


def test_bad_identities_and_a_driver_without_a_face(tmp_path):
    portrait = tmp_path / "me.jpg"
    portrait.write_bytes(b"x")
    r = run_live("run", "--identity", str(portrait), "--input", "0")
    assert r.returncode == 2 and "not an image" in r.stderr and "Traceback" not in r.stderr
    r = run_live("run", "--identity", "seed:x", "--input", "0")
    assert r.returncode == 2 and "seed:N" in r.stderr
    import cv2

    blank = tmp_path / "blank.avi"
    w = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 128))
    for _ in range(6):
        w.write(np.full((128, 128, 3), 90, np.uint8))
    w.release()
    out = tmp_path / "out.mp4"
    r = run_live("run", "--identity", "seed:1", "--backend", "torch", "--input", str(blank), "-o", str(out),
                 timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("avatar stays neutral") == 1
    cap = cv2.VideoCapture(str(out))
    frames = []
    while (f := cap.read())[0]:
        frames.append(f[1].astype(int))
    assert len(frames) == 6 and all(np.abs(f - frames[0]).mean() < 1.0 for f in frames)  # neutral throughout


def test_failed_compile_falls_back_to_eager(monkeypatch):
    import torch

    from live.backends.base import TensorSpec
    from live.backends.torch_backend import TorchBackend

    def broken_compile(fn, *args, **kwargs):
        def run(*a):
            raise RuntimeError("no C++ compiler found")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    b = TorchBackend(torch.nn.Linear(4, 2), {"x": TensorSpec((1, 4))}, {"y": TensorSpec((1, 2))}, compile=True)
    x = np.ones((1, 4), np.float32)
    first = b.run({"x": x})["y"]
    assert first.shape == (1, 2) and b._fn is b.module  # remembered: eager from now on
    assert np.array_equal(b.run({"x": x})["y"], first)


def test_roll_turns_the_image_not_the_latent():
    from live.image_steps import roll_host as rotate

    stage = EncoderStage(LinearEncoder.load())
    stage.process(frame(0, face()))
    tilted = face()
    tilted = Face(**{**tilted.__dict__, "roll": 15.0})
    out = stage.process(frame(1, tilted))
    assert not np.abs(out.offset).any() and out.avatar_roll == pytest.approx(15.0, abs=1e-4)
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 28:36] = 255  # a vertical bar
    turned = rotate(img, 15.0)
    top, bottom = turned[5].argmax(axis=0)[0], turned[58].argmax(axis=0)[0]
    assert top < 28 and bottom > 30  # counter-clockwise: the top of the bar moves left
