"""The scripted demo's face: a real mesh at rest, its lips and lids moved for the pout, the press and the squint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_py

from live import mesh, transfer
from live.demo import KEYFRAMES, ScriptedSource, scripted_mesh
from live.frames import BLENDSHAPE_NAMES
from live.models.demo_mesh import DEMO_MESH_PATH, load_demo_mesh


def frame_at(name: str):
    """The first scripted frame at the keyframe whose blendshapes include `name`, and the frame at rest before it."""
    t = next(t for t, blend, _ in KEYFRAMES if name in blend)
    src = ScriptedSource(fps=10)
    frames = [src.read() for _ in range(src.frames)]
    return frames[round(t * 10)], frames[0]


def pixels(frame) -> np.ndarray:
    h, w = frame.image.shape[:2]
    return mesh.to_pixels(frame.face.landmarks, w, h)


def mouth_width(p):
    return abs(p[291, 0] - p[61, 0])


def lip_height(p):
    return float(np.ptp(p[list(mesh.LIPS), 1]))


def eye_opening(p):
    return float(np.mean([p[lo, 1] - p[up, 1] for up, lo in mesh.RIGHT_LID_PAIRS + mesh.LEFT_LID_PAIRS]))


def test_the_script_moves_lips_and_lids_only_for_its_three_movements():
    neutral, (w, h) = load_demo_mesh()
    points = mesh.to_pixels(neutral, w, h)
    assert np.array_equal(scripted_mesh(points, np.zeros(len(BLENDSHAPE_NAMES), np.float32)), points)
    pout, rest = frame_at("mouthPucker")
    press, _ = frame_at("mouthPressLeft")
    squint, _ = frame_at("eyeSquintLeft")
    p0 = pixels(rest)
    assert mouth_width(pixels(pout)) / mouth_width(p0) == pytest.approx(1 - 0.3 * 0.9, abs=0.01)
    assert lip_height(pixels(press)) / lip_height(p0) < 0.75
    assert mouth_width(pixels(press)) == pytest.approx(mouth_width(p0), abs=0.5)
    assert eye_opening(pixels(squint)) / eye_opening(p0) == pytest.approx(1 - 0.45 * 0.8, abs=0.02)
    moved = set(mesh.LIPS) | {i for pair in mesh.RIGHT_LID_PAIRS + mesh.LEFT_LID_PAIRS for i in pair}
    still = [i for i in range(478) if i not in moved]
    for f in (pout, press, squint):
        assert np.abs(pixels(f)[still] - p0[still]).max() < 1e-3  # the face's outline, nose, brows stay


def test_the_scripted_pout_narrows_an_avatars_mouth():
    """The pout reaches the warp's transfer as a pout: the avatar's mouth corners are drawn in by the same share."""
    pout, rest = frame_at("mouthPucker")
    neutral = pixels(rest)
    avatar = neutral * np.array([0.6, 0.5, 0.6]) + np.array([20.0, 40.0, 0.0])  # another size, elsewhere
    moved = avatar[:, :2] + transfer.transfer(pixels(pout), neutral, avatar)
    assert mouth_width(moved) / mouth_width(avatar) == pytest.approx(1 - 0.3 * 0.9, abs=0.02)


def test_the_demo_mesh_is_what_its_script_makes(tmp_path, landmarker_path):
    out = tmp_path / "mesh.json"
    run_py(f"""
        from live.train.demo_mesh import main
        print('{{"rc": %d}}' % main(["--out", {str(out)!r}]))
    """)
    made, committed = json.loads(out.read_text()), json.loads(DEMO_MESH_PATH.read_text())
    assert made["image_size"] == committed["image_size"]
    assert np.abs(np.array(made["landmarks"]) - np.array(committed["landmarks"])).max() < 2e-3
