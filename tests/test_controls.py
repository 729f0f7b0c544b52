"""Live controls: gains, freeze, re-centre through the shared Controls object, and the emotion edit."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_py
from live.controls import Controls
from live.models.emotion import META_PATH, load_direction
from live.models.encoder import LinearEncoder
from live.stages.encoder import EncoderStage
from test_reenactment import face, frame


def test_gain_zero_set_live_renders_the_neutral_identity():
    import torch

    from live.assets import AssetStore
    from live.models.generator import load_mobilestylegan
    from live.render import SynthesisNet, seed_identity

    enc = LinearEncoder.load()
    controls = Controls()
    stage = EncoderStage(enc, controls=controls)
    stage.process(frame(0, face()))
    assert np.abs(stage.process(frame(1, face(yaw=20.0, smile=0.8))).offset).max() > 0.1
    controls.update(expression_gain=0.0, pose_gain=0.0)  # as the page's sliders do, mid-stream
    out = stage.process(frame(2, face(yaw=20.0, smile=0.8)))
    assert out.avatar_roll == 0.0
    gen = load_mobilestylegan(AssetStore(progress=False))
    net = SynthesisNet(gen, seed_identity(gen, 0), enc.k, 256)
    with torch.no_grad():
        driven = net(torch.from_numpy(out.offset))
        neutral = net(torch.zeros(1, enc.k, 512))
    assert torch.equal(driven, neutral)


def test_recentre_maps_the_current_driver_frame_to_zero():
    controls = Controls()
    stage = EncoderStage(LinearEncoder.load(), controls=controls)
    stage.process(frame(0, face()))
    assert np.abs(stage.process(frame(1, face(yaw=15.0, smile=0.5))).offset).max() > 0
    controls.update(recentre=True)
    now = stage.process(frame(2, face(yaw=15.0, smile=0.5)))
    assert not np.abs(now.offset).any()
    assert np.abs(stage.process(frame(3, face(yaw=0.0))).offset).max() > 0  # the old neutral is a change now


def test_freeze_holds_the_avatar():
    controls = Controls()
    stage = EncoderStage(LinearEncoder.load(), controls=controls)
    stage.process(frame(0, face()))
    held = stage.process(frame(1, face(yaw=10.0))).offset
    controls.update(freeze=True)
    for i, yaw in enumerate((25.0, -20.0, 5.0), start=2):
        assert np.array_equal(stage.process(frame(i, face(yaw=yaw))).offset, held)
    controls.update(freeze=False)
    assert not np.array_equal(stage.process(frame(9, face(yaw=25.0))).offset, held)


def test_control_values_are_checked():
    c = Controls()
    for bad in ({"expression_gain": 2.5}, {"pose_gain": -1}, {"emotion": "x"}, {"freeze": 1}, {"speed": 1},
                {"pose_gain": True}):
        with pytest.raises(ValueError):
            c.update(**bad)
    assert c.update(expression_gain=1.5, emotion=-2)["expression_gain"] == 1.5
    with pytest.raises(ValueError, match="unknown control 'speed'"):  # one bad name: nothing of the message is set
        c.update(expression_gain=0.5, recentre=True, speed=1)
    assert c.expression_gain == 1.5 and not c.take_recentre()


def test_emotion_direction_is_committed_with_metadata():
    import json

    enc = LinearEncoder.load()
    n = load_direction(enc.k)
    meta = json.loads(META_PATH.read_text())
    assert n is not None and n.shape == (1, enc.k, 512) and np.isfinite(n).all()
    assert meta["heldout_accuracy"] > 0.9 and meta["happy"] > 100 and meta["sad"] > 100
    assert meta["generator_sha256"] == enc.meta.get("generator_sha256", meta["generator_sha256"])


def test_emotion_alpha_moves_the_smile():
    res = run_py("""
import json, numpy as np, torch
from live.assets import AssetStore
from live.landmarker import FaceTracker
from live.models.emotion import load_direction
from live.models.encoder import LinearEncoder
from live.models.generator import load_mobilestylegan
from live.stages.encoder import EncoderStage
from live.controls import Controls
from live.frames import Frame
from live.render import SynthesisNet, seed_identity, to_uint8
store = AssetStore(progress=False)
gen = load_mobilestylegan(store)
enc = LinearEncoder.load()
tracker = FaceTracker(store.resolve("face_landmarker"), video=False)
out = {}
for seed in (0, 3):
    net = SynthesisNet(gen, seed_identity(gen, seed), enc.k, 256)
    for alpha in (-2.0, 0.0, 2.0):
        controls = Controls(emotion=alpha)
        stage = EncoderStage(enc, controls=controls, emotion_direction=load_direction(enc.k))
        f = stage.process(Frame(seq=0, t_capture_ns=0, t_media_s=0.0, image=np.zeros((4, 4, 3), np.uint8)))
        with torch.no_grad():
            img = to_uint8(net(torch.from_numpy(f.offset)).numpy())
        faces = tracker.detect(img, 0.0)
        out[f"{seed}:{alpha}"] = (faces[0].blendshape("mouthSmileLeft") + faces[0].blendshape("mouthSmileRight")) / 2
print(json.dumps(out))
""", timeout=300)
    for seed in (0, 3):
        sad, neutral, happy = res[f"{seed}:-2.0"], res[f"{seed}:0.0"], res[f"{seed}:2.0"]
        assert happy > neutral and sad < neutral - 0.1, res  # (smiles saturate near 1)


def test_preview_keys_change_the_controls():
    from live.stages.preview import apply_key

    c = Controls()
    assert apply_key(c, "G") == "expression_gain 1.1" and c.expression_gain == 1.1
    for _ in range(30):
        apply_key(c, "p")
    assert c.pose_gain == 0.0  # clamped at the range's end
    assert apply_key(c, "E") == "emotion 0.5" and apply_key(c, "f") == "freeze on" and c.freeze
    assert apply_key(c, "r") == "re-centre" and c.take_recentre()
    assert apply_key(c, "q") == "stop" and apply_key(c, "x") is None


def test_preview_without_a_display_says_so(tmp_path, clip):
    import os

    from conftest import run_live

    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        pytest.skip("a display is available here")
    r = run_live("run", "--identity", "seed:0", "--input", str(clip), "--preview", "--backend", "torch")
    assert r.returncode == 2 and "needs a display" in r.stderr and "Traceback" not in r.stderr
