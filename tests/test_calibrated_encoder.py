"""The calibrated encoder (the default): its file, its curves, and what it does to a generated face."""

import json

import numpy as np
import pytest
from conftest import run_py

import dataclasses

from live.encoder import Encoder, load_encoder, steps
from live.encoder.response import YIELD_POWER
from live.models.curves import response_curve as curve
from live.models.encoder import CALIBRATED_PATH, NUM_SIGNALS, SIGNAL_INDEX, LinearEncoder
from live.train.calibrate_encoder import EXPRESSIONS


def ungoverned(enc: Encoder) -> Encoder:
    """The encoder without its identity governor."""
    return Encoder(dataclasses.replace(enc.response, governor=None), enc.meta)


def cost(enc: Encoder, c: np.ndarray, pose_sq: float = 0.0) -> float:
    return steps.identity_cost(c, pose_sq, enc.response.governor)


def test_default_is_the_calibrated_file_for_this_generator():
    from live.assets import AssetStore
    from live.models.generator import load_mobilestylegan

    gen = load_mobilestylegan(AssetStore(progress=False))
    enc = load_encoder(generator_sha256=gen.source_sha256)
    meta = json.loads(CALIBRATED_PATH.with_suffix(".json").read_text())
    assert isinstance(enc, Encoder) and enc.names == list(EXPRESSIONS) == meta["expressions"]
    assert meta["generator_sha256"] == gen.source_sha256 and meta["calibration_faces"] >= 8
    assert enc.response.directions.shape == (len(EXPRESSIONS), enc.k, 512) and enc.response.readout.shape == (len(EXPRESSIONS), NUM_SIGNALS)
    assert np.all(np.diff(enc.response.curve_x, axis=1) > 0)
    assert np.array_equal(enc(np.zeros(NUM_SIGNALS, np.float32)), np.zeros((1, enc.k, 512), np.float32))
    for name in ("jaw", "smile"):  # measured: these expressions reach a real change
        hi = meta["expressions_measured"][name]["reach_shown"][1]
        assert hi > 0.15, (name, hi)
    with pytest.raises(ValueError, match="fitted for generator"):
        load_encoder(generator_sha256="0" * 64)


def test_linear_file_still_loads_as_the_baseline(tmp_path):
    from live.models.encoder import WEIGHTS_PATH

    assert type(load_encoder(WEIGHTS_PATH)) is LinearEncoder


def test_damaged_or_missing_weights_say_what_to_do(tmp_path):
    bad = tmp_path / "encoder.safetensors"
    bad.write_bytes(CALIBRATED_PATH.read_bytes()[:1000])
    with pytest.raises(ValueError, match="unreadable.*calibrate_encoder"):
        Encoder.load(bad)
    with pytest.raises(ValueError, match="unreadable"):
        load_encoder(bad)
    with pytest.raises(FileNotFoundError, match="no encoder weights"):
        load_encoder(tmp_path / "missing.safetensors")


def test_curve_is_monotone_and_stops_at_the_identity_budget():
    rows = [{"c": c, "got": g, "identity": i, "faces": 4} for c, g, i in (
        (-1.0, -0.2, 0.3), (-0.5, -0.1, 0.2), (0.25, 0.05, 0.1), (0.5, 0.2, 0.2), (1.0, 0.15, 0.3),  # dip
        (1.5, 0.4, 0.3), (2.0, 0.6, 0.9))]  # over budget: the curve ends where the budget is crossed
    x, y = curve(rows, budget=0.5)
    assert np.allclose(x, [-0.2, -0.1, 0.0, 0.05, 0.2, 0.4, 0.4 + 0.2 / 3], atol=1e-6)
    assert np.allclose(y, [-1.0, -0.5, 0.0, 0.25, 0.5, 1.5, 1.5 + 0.5 / 3], atol=1e-6)


def test_curve_drops_a_side_that_only_moves_noise():
    rows = [{"c": c, "got": g, "identity": i, "faces": 4} for c, g, i in (
        (-2.0, -0.03, 0.4), (-1.0, -0.02, 0.3), (0.5, 0.1, 0.2), (1.0, 0.105, 0.3), (2.0, 0.3, 0.4))]
    x, y = curve(rows, budget=0.5)
    # a flat step (1.0 adds 0.005) is left out, not the end: identity 3's smile on the open jaw reads -0.008 at
    # coefficient 1.5 and +0.031 at 2.0
    assert list(x) == pytest.approx([0.0, 0.1, 0.3]) and list(y) == [0.0, 0.5, 2.0]


def test_curve_runs_straight_through_a_dead_zone():
    # A jaw that reads +0.002 at coefficient 0.25 and opens from 0.7 on: a driver's tracker noise must not ask
    # for a coefficient that the tracker cannot see on the avatar (but dlib can).
    rows = [{"c": c, "got": g, "identity": i, "faces": 1} for c, g, i in (
        (0.1, 0.0005, 0.05), (0.25, 0.002, 0.1), (0.45, 0.007, 0.15), (0.7, 0.036, 0.2), (1.0, 0.26, 0.3))]
    x, y = curve(rows, budget=0.5)
    assert list(x) == pytest.approx([0.0, 0.036, 0.26]) and list(y) == pytest.approx([0.0, 0.7, 1.0])
    assert np.interp(0.005, x, y) == pytest.approx(0.7 * 0.005 / 0.036, rel=1e-4)


def test_identity_governor_scales_combined_expressions_down():
    enc = load_encoder().with_governor(frame_budget=0.4)  # one the frame below is well over (the committed one is
    # barely passed)
    d = np.zeros(NUM_SIGNALS, np.float32)
    jaw = 0.9 * float(enc.response.curve_x[enc.names.index("jaw"), -1])  # jaw wide open (within its curve), smile
    d[25], d[44], d[45], d[9], d[10] = jaw, -0.45, -0.45, 0.35, 0.35  # relaxed, blink: all at once
    assert np.all(np.abs(enc.response.readout @ d) <= np.maximum(np.abs(enc.response.curve_x[:, 0]), enc.response.curve_x[:, -1]))  # in reach
    governed, free, budget = enc.coefficients(d), ungoverned(enc).coefficients(d), 0.4
    assert cost(enc, free) > budget >= cost(enc, governed) > budget - 0.01  # scaled to the budget
    asked = enc.response.readout @ d  # what every expression asks is scaled by s, the blink's by s ** YIELD_POWER
    shown = np.array([np.interp(c, y, x) for c, x, y in zip(governed, enc.response.curve_x, enc.response.curve_y, strict=True)])
    kept = {n: shown[j] / asked[j] for j, n in enumerate(enc.names) if asked[j] != 0}
    s = kept["jaw"]
    assert 0 < s < 0.9 and kept["smile"] == pytest.approx(s, abs=0.02)
    assert kept["blink"] == pytest.approx(s ** YIELD_POWER.get("blink", 1.0), abs=0.02) and kept["blink"] > s + 0.05
    small = np.zeros(NUM_SIGNALS, np.float32)
    small[25] = 0.1
    assert np.array_equal(enc.coefficients(small), ungoverned(enc).coefficients(small))  # a small ask is left alone
    turned = d.copy()
    turned[52] = 30.0 / 30.0  # ...and a turned head leaves less room for expressions
    assert np.all(np.abs(enc.coefficients(turned)) <= np.abs(governed) + 1e-6)


def test_shown_is_the_ask_within_reach_as_much_as_the_governor_keeps():
    """What the encoder means the avatar to show: nothing for no change, the ask at the expression's scale, the
    curve's end past its reach, and over budget the share the governor kept, which is what its coefficients make."""
    enc = load_encoder().with_governor(frame_budget=0.4)  # one the frames below are well over
    scales, jaw = enc.response.scales, enc.names.index("jaw")
    assert scales[jaw] == enc.meta["expression_scale"]["jaw"] and np.all(scales > 0)
    d = np.zeros(NUM_SIGNALS, np.float32)
    assert np.array_equal(enc.shown(d), np.zeros(len(enc.names)))
    d[SIGNAL_INDEX["jawOpen"]] = 0.1
    assert enc.shown(d)[jaw] == pytest.approx(0.1 * scales[jaw]) and not np.delete(enc.shown(d), jaw).any()
    d[SIGNAL_INDEX["jawOpen"]] = 5.0
    # the curve's end costs more than a frame's budget
    assert ungoverned(enc).shown(d)[jaw] == pytest.approx(enc.response.curve_x[jaw, -1] * scales[jaw])
    assert 0 < enc.shown(d)[jaw] < enc.response.curve_x[jaw, -1] * scales[jaw]
    d[:] = 0  # the governor test's frame: all at once, over budget
    d[25], d[44], d[45], d[9], d[10] = 0.9 * float(enc.response.curve_x[jaw, -1]), -0.45, -0.45, 0.35, 0.35
    shown, asked = enc.shown(d), np.clip(enc.response.readout @ d, enc.response.curve_x[:, 0], enc.response.curve_x[:, -1])
    kept = {n: shown[j] / scales[j] / asked[j] for j, n in enumerate(enc.names) if asked[j] != 0}
    assert 0 < kept["jaw"] < 0.9 and kept["smile"] == pytest.approx(kept["jaw"])
    assert kept["blink"] == pytest.approx(kept["jaw"] ** YIELD_POWER.get("blink", 1.0))
    assert np.allclose(enc.coefficients(d), steps.coefficients(shown / scales, enc.response))  # what its coefficients make


def test_identity_governor_gives_up_the_brows_first():
    """A frame over budget: the brows are scaled down before the jaw is (the jaw keeps all of its ask while
    dropping the brows suffices); when even no brows leave it over budget, the brows go and the jaw is scaled."""
    enc = load_encoder()
    brows, jaw = enc.names.index("brows"), enc.names.index("jaw")
    d = np.zeros(NUM_SIGNALS, np.float32)
    d[SIGNAL_INDEX["browInnerUp"]] = float(enc.response.curve_x[brows, -1])  # brows all the way up
    budget = enc.response.governor.frame_budget
    for asked_jaw in np.linspace(0.05, float(enc.response.curve_x[jaw, -1]), 12):
        d[SIGNAL_INDEX["jawOpen"]] = asked_jaw
        free = ungoverned(enc).coefficients(d)
        jaw_alone = cost(enc, np.where(np.arange(len(free)) == jaw, free, 0.0))
        if cost(enc, free) > budget >= jaw_alone:
            break
    else:
        pytest.fail("no jaw ask is within the budget alone and over it with the brows: the encoder costs changed")
    governed = enc.coefficients(d)
    assert governed[jaw] == pytest.approx(free[jaw]) and 0 <= governed[brows] < free[brows]
    assert cost(enc, governed) == pytest.approx(budget, abs=0.01)
    d[SIGNAL_INDEX["jawOpen"]] = float(enc.response.curve_x[jaw, -1])  # the jaw wide open and a strong nod:
    d[SIGNAL_INDEX["pitch"]] = 1.0  # over budget even without the brows
    free = ungoverned(enc).coefficients(d)
    g = enc.response.governor
    nod = steps.pose_cost_sq(steps.limit_pose(d, g), g)
    assert cost(enc, np.where(np.arange(len(free)) == jaw, free, 0.0), nod) > budget
    governed = enc.coefficients(d)
    assert governed[brows] == 0 and 0 < governed[jaw] < free[jaw]


def test_pose_share_leaves_room_for_expressions_on_a_strong_nod(tmp_path):
    """A nod that alone would take the whole frame budget: without a pose share the jaw stays shut; with one
    the nod is scaled down to its share (yaw and pitch alike, roll untouched) and the jaw opens."""
    enc = load_encoder()
    d = np.zeros(NUM_SIGNALS, np.float32)
    d[SIGNAL_INDEX["jawOpen"]] = 0.3
    nod = 1.2 * enc.response.governor.frame_budget / float(enc.response.governor.pose_cost[1])  # degrees of pitch costing 1.2 x the budget
    d[SIGNAL_INDEX["pitch"]], d[SIGNAL_INDEX["yaw"]], d[SIGNAL_INDEX["roll"]] = nod / 30, 5 / 30, 4 / 30
    uncapped = enc.with_governor(pose_share=1)
    assert np.array_equal(steps.limit_pose(d, uncapped.response.governor), d) and uncapped.coefficients(d)[0] == 0
    enc = enc.with_governor(pose_share=0.7)
    limited = steps.limit_pose(d, enc.response.governor)
    angles = limited[[SIGNAL_INDEX["yaw"], SIGNAL_INDEX["pitch"]]] * 30
    assert float(np.linalg.norm(enc.response.governor.pose_cost * angles)) == pytest.approx(0.7 * enc.response.governor.frame_budget, rel=1e-4)
    assert angles[1] / angles[0] == pytest.approx(nod / 5, rel=1e-4)
    assert limited[SIGNAL_INDEX["roll"]] == d[SIGNAL_INDEX["roll"]]
    assert enc.coefficients(d)[0] > 0
    offset = limited @ enc.response.matrix + np.tensordot(enc.coefficients(d), enc.response.directions, 1).reshape(-1)
    assert np.allclose(enc(d).reshape(-1), offset, atol=1e-5)  # the pose offset is the limited one too
    small = np.zeros(NUM_SIGNALS, np.float32)
    small[SIGNAL_INDEX["yaw"]] = 3 / 30
    assert np.array_equal(steps.limit_pose(small, enc.response.governor), small)  # within its share: left alone
    enc.save(tmp_path / "e.safetensors")
    assert Encoder.load(tmp_path / "e.safetensors").response.governor.pose_share == pytest.approx(0.7)
    with pytest.raises(ValueError, match="pose_share"):
        enc.with_governor(pose_share=1.5)


def test_stage_with_the_calibrated_encoder():
    from live.frames import Face, Frame
    from live.stages.encoder import EncoderStage

    def frame(i, jaw=0.0):
        b = np.zeros(52, np.float32)
        b[25] = jaw  # jawOpen
        f = Face(landmarks=np.zeros((478, 3), np.float32), blendshapes=b, yaw=0.0, pitch=0.0, roll=0.0,
                 translation=(0, 0, 0), matrix=np.eye(4, dtype=np.float32))
        return Frame(seq=i, t_capture_ns=i, t_media_s=i / 25, image=np.zeros((4, 4, 3), np.uint8), face=f)

    enc = load_encoder()
    stage = EncoderStage(enc)
    assert not stage.process(frame(0, 0.1)).offset.any()
    small, big = (np.abs(stage.process(frame(i, 0.1 + j)).offset).sum() for i, j in ((1, 0.1), (2, 0.3)))
    assert 0 < small < big
    assert enc.coefficients(np.eye(NUM_SIGNALS, dtype=np.float32)[25] * 0.3)[enc.names.index("jaw")] > 0


def test_asked_expressions_show_on_a_generated_face():
    """Through the generator and MediaPipe: asking for an open jaw opens the avatar's jaw, asking for a
    smile change moves its smile that way, asking for a blink closes its eyes, on faces not calibrated on
    (the changes are in asked units x the expression scale: 0.6, blink 1.0)."""
    res = run_py("""
import json, numpy as np, torch
from live.assets import AssetStore
from live.landmarker import FaceTracker
from live.encoder import load_encoder
from live.models.encoder import face_signals
from live.models.generator import load_mobilestylegan
from live.models.early_exit import load_heads, render_styles
from live.render import seed_identity, to_uint8
from live.frames import BLENDSHAPE_NAMES as B
torch.set_grad_enabled(False)
store = AssetStore(progress=False)
gen = load_mobilestylegan(store); enc = load_encoder(); heads = load_heads()
tr = FaceTracker(store.resolve("face_landmarker"), video=False)
def signals(delta, seed):
    st = seed_identity(gen, seed)
    st[:, :enc.k] += torch.from_numpy(enc(delta))
    return face_signals(tr.detect(to_uint8(render_styles(gen, st, 256, heads).numpy()), 0.0)[0])
out = {}
for seed in (3, 5):
    base = signals(np.zeros(55, np.float32), seed)
    smiling = base[B.index("mouthSmileLeft")] > 0.5  # a smiling face has room to relax, a calm one to smile
    out[f"base_smile{seed}"] = float(base[B.index("mouthSmileLeft")])
    for name, cols, value in (("jaw", ["jawOpen"], 0.3),
                              ("smile", ["mouthSmileLeft", "mouthSmileRight"], -0.5 if smiling else 0.5),
                              ("blink", ["eyeBlinkLeft", "eyeBlinkRight"], 0.3)):
        d = np.zeros(55, np.float32)
        for c in cols:
            d[B.index(c)] = value
        s = signals(d, seed)
        out[f"{name}{seed}"] = float(np.sign(value) * np.mean([s[B.index(c)] - base[B.index(c)] for c in cols]))
tr.close()
print(json.dumps(out))
""", timeout=300)
    for seed in (3, 5):
        assert res[f"jaw{seed}"] > 0.1, res
        assert res[f"smile{seed}"] > 0.05, res  # the asked way
        assert res[f"blink{seed}"] > 0.12, res  # the blink channel: asked 0.3


def test_expression_scales_parse_or_say_what_is_wrong():
    from live.train.calibrate_encoder import parse_scales

    assert parse_scales("0.5") == dict.fromkeys(EXPRESSIONS, 0.5)
    assert parse_scales("jaw=1,smile=0.6") == {"jaw": 1.0, "smile": 0.6, "blink": 1.0, "brows": 1.0}
    for bad in ("lots", "nose=1", "jaw=0", "jaw=3", "jaw"):
        with pytest.raises(ValueError):
            parse_scales(bad)


@pytest.mark.parametrize("args, says", [
    (["--identity-refine", "blink"], "--identity-refine: names must be among"),  # a style channel is not refined
    (["--identity-refine", "nose"], "--identity-refine: names must be among"),
    (["--redo", "jaw"], "--redo remakes expressions of an earlier calibration"),
    (["--pose-share", "1.5"], "--pose-share must be in (0, 1], got 1.5"),
    (["--pose-share", "0"], "--pose-share must be in (0, 1], got 0.0"),
])
def test_calibration_options_are_checked_before_any_work(args, says, capsys):
    from live.train.calibrate_encoder import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2 and says in capsys.readouterr().err


def test_identity_refinement_without_the_surrogate_says_how_to_make_it(tmp_path, monkeypatch, capsys):
    import live.train.surrogate
    from live.train.calibrate_encoder import main

    monkeypatch.setattr(live.train.surrogate, "DATA", tmp_path / "no-surrogate")
    with pytest.raises(SystemExit) as exc:
        main(["--identity-refine", "jaw"])
    assert exc.value.code == 2 and "python -m live.train.surrogate" in capsys.readouterr().err
