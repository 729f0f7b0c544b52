"""The encoder fitted to one avatar: the measurement logic on fake avatars whose identity costs and tracked
responses are known exactly, then on a real generated face (generator + MediaPipe + dlib), and the cache."""

import dataclasses
import logging

import numpy as np
import pytest

from live.avatar_fit import (
    CONDITION_LEVELS,
    POSE_CROSS_CORRECTED,
    REAL_JAW_PITCH,
    fit_to_avatar,
    own_turn,
    pose_cross,
)
from live.avatar_fit_cache import AvatarFits
from live.encoder import Encoder, load_encoder, steps
from live.encoder.response import AvatarResponse
from live.models.curves import cost_points
from live.models.encoder import NUM_SIGNALS, POSE_SCALE, SIGNAL_INDEX


def pair(enc: Encoder) -> tuple[int, int] | None:
    """(j, i) of the encoder's conditioned curve: j's curve measured at i's coefficients; None without one."""
    c = enc.response.conditioned
    return None if c is None else (c.j, c.i)


def without(enc: Encoder, **groups) -> Encoder:
    """The encoder with some of its measured groups replaced (e.g. cross=None)."""
    return Encoder(dataclasses.replace(enc.response, **groups), enc.meta)


def reloaded(enc: Encoder, tensors: dict) -> Encoder:
    return Encoder(AvatarResponse.from_tensors(tensors, enc.meta), enc.meta)


def linear_avatar(enc, seed: int = 0):
    """A fake avatar whose dlib descriptor moves linearly with the offset: distance = |M @ offset|; MediaPipe
    finds no face on it (so only its costs can be fitted)."""
    m = np.random.default_rng(seed).normal(size=(128, enc.k * 512)).astype(np.float32)
    m *= 0.2 / np.median([np.linalg.norm(m @ d.reshape(-1)) for d in enc.response.directions])  # ~0.2 per unit coefficient
    v0 = np.ones(128, np.float32)
    return lambda offset, describe=True: (v0 + m @ offset.reshape(-1) if describe else None, None), m


def expressive_avatar(enc, gains: dict, turns: dict | None = None, together: dict | None = None,
                      turn_signals: dict | None = None):
    """A fake avatar whose tracked signals move linearly with the coefficient along each expression direction
    and with the head-angle rows: gains {expression: {signal: change per unit coefficient}}, turns {yaw|pitch:
    degrees shown per degree asked} (default 0: the head never turns), together {(expression, expression):
    {signal: change per unit of the product of their coefficients}} (effects that do not add up), turn_signals
    {yaw|pitch: {signal: change per degree asked}} (what the head rows make besides the turn); its descriptor as
    linear_avatar's."""
    costs, _ = linear_avatar(enc)
    rows = [enc.response.matrix[SIGNAL_INDEX[a]] for a in ("yaw", "pitch")]
    basis = np.concatenate([enc.response.directions.reshape(len(enc.names), -1), rows])
    back = np.linalg.pinv(basis.T)  # offset -> coefficients (expressions, then yaw and pitch in signal units)
    g = np.zeros((len(basis), NUM_SIGNALS), np.float32)
    for name, per in gains.items():
        for sig, v in per.items():
            g[enc.names.index(name), SIGNAL_INDEX[sig]] = v
    for j, angle in enumerate(("yaw", "pitch")):
        g[len(enc.names) + j, SIGNAL_INDEX[angle]] = (turns or {}).get(angle, 0.0)
        for sig, v in (turn_signals or {}).get(angle, {}).items():
            g[len(enc.names) + j, SIGNAL_INDEX[sig]] = v * POSE_SCALE
    s0 = np.full(NUM_SIGNALS, 0.1, np.float32)

    def shown(coefficients: np.ndarray) -> np.ndarray:
        out = s0 + np.pad(coefficients, (0, len(g) - len(coefficients))) @ g
        for (a, b), per in (together or {}).items():
            for sig, v in per.items():
                out[SIGNAL_INDEX[sig]] += v * coefficients[enc.names.index(a)] * coefficients[enc.names.index(b)]
        return out

    return lambda offset, describe=True: (costs(offset, describe)[0], shown(back @ offset.reshape(-1))), shown


def test_cost_points_pass_through_zero_and_never_fall_away_from_it():
    c, d = cost_points([-1.0, -0.5, 0.5, 1.0, 2.0], [0.4, 0.5, 0.2, 0.1, float("nan")])
    assert list(c) == [-1.0, -0.5, 0.0, 0.5, 1.0] and np.allclose(d, [0.5, 0.5, 0.0, 0.2, 0.2])


def test_fit_measures_the_avatars_own_costs():
    enc = load_encoder()
    measure, m = linear_avatar(enc)
    seen = []
    fitted = fit_to_avatar(enc, measure, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] == len(seen)  # every render reported, ending at the total
    for j, d in enumerate(enc.response.directions):
        per_unit = float(np.linalg.norm(m @ d.reshape(-1)))
        assert np.allclose(fitted.response.governor.cost_id[j], np.abs(fitted.response.governor.cost_c[j]) * per_unit, rtol=1e-3, atol=1e-5)
    for j, name in enumerate(("yaw", "pitch")):
        per_degree = float(np.linalg.norm(m @ enc.response.matrix[SIGNAL_INDEX[name]])) / POSE_SCALE
        assert fitted.response.governor.pose_cost[j] == pytest.approx(per_degree, rel=1e-3)
    # directions, curves and budget are the encoder's: only the governor's costs changed
    assert np.array_equal(fitted.response.curve_x, enc.response.curve_x) and np.array_equal(fitted.response.directions, enc.response.directions)
    assert fitted.response.governor.frame_budget == enc.response.governor.frame_budget and "fitted_to_avatar" in fitted.meta
    # a costlier avatar gets its expressions scaled down harder than the mean costs would
    delta = np.zeros(NUM_SIGNALS, np.float32)
    delta[SIGNAL_INDEX["jawOpen"]], delta[SIGNAL_INDEX["mouthSmileLeft"]] = 0.6, 0.5
    delta[SIGNAL_INDEX["pitch"]] = 12 / POSE_SCALE
    costly = fit_to_avatar(enc, lambda off, describe: measure(off * 3.0, describe))
    assert costly.response.cross is None  # no face for MediaPipe: the mean curves, no cross-talk
    assert np.all(np.abs(costly.coefficients(delta)) <= np.abs(enc.coefficients(delta)) + 1e-6)
    assert np.abs(costly.coefficients(delta)).sum() < np.abs(fitted.coefficients(delta)).sum()


def test_head_cost_is_a_measured_table_in_degrees(tmp_path):
    """An avatar whose identity distance grows as the square root of the offset (concave, as dlib's does with the
    head's angle): the governor's head cost at 2 degrees is what was measured there, not the 16-degree cost per
    degree times 2; past the last probe it goes on growing; a pose share caps the table's cost; the table is saved."""
    enc = load_encoder()
    _, m = linear_avatar(enc)
    v0 = np.ones(128, np.float32)

    def concave(offset, describe=True):
        x = m @ offset.reshape(-1)
        return v0 + x / np.sqrt(max(float(np.linalg.norm(x)), 1e-12)), None

    fitted = fit_to_avatar(enc, concave)
    row = enc.response.matrix[SIGNAL_INDEX["yaw"]]

    def cost(yaw=0.0, pitch=0.0) -> float:
        delta = np.zeros(NUM_SIGNALS, np.float32)
        delta[SIGNAL_INDEX["yaw"]], delta[SIGNAL_INDEX["pitch"]] = yaw / POSE_SCALE, pitch / POSE_SCALE
        return float(np.sqrt(steps.pose_cost_sq(delta, fitted.response.governor)))

    at = {d: float(np.sqrt(np.linalg.norm(m @ row) * d / POSE_SCALE)) for d in (2, 16)}
    assert cost(yaw=2) == pytest.approx(at[2], rel=1e-4) and cost(yaw=-2) == pytest.approx(at[2], rel=1e-4)
    assert cost(yaw=2) > 2.5 * fitted.response.governor.pose_cost[0] * 2  # the per-degree cost at 16 would count 2.8x too little
    assert cost(yaw=16) == pytest.approx(at[16], rel=1e-4) and cost(yaw=32) == pytest.approx(2 * at[16], rel=1e-4)
    fitted = fitted.with_governor(pose_share=0.5)
    nod = np.zeros(NUM_SIGNALS, np.float32)
    nod[SIGNAL_INDEX["pitch"]], nod[SIGNAL_INDEX["yaw"]] = 20 / POSE_SCALE, 5 / POSE_SCALE
    assert cost(20, 5) > 0.5 * fitted.response.governor.frame_budget
    limited = steps.limit_pose(nod, fitted.response.governor)[[SIGNAL_INDEX["yaw"], SIGNAL_INDEX["pitch"]]] * POSE_SCALE
    assert cost(*limited) == pytest.approx(0.5 * fitted.response.governor.frame_budget, rel=1e-3) and limited[1] / limited[0] == \
        pytest.approx(4.0)
    fitted.save(tmp_path / "fit.safetensors")
    again = Encoder.load(tmp_path / "fit.safetensors")
    assert np.array_equal(again.response.governor.pose_cost_x, fitted.response.governor.pose_cost_x) and np.array_equal(again.response.governor.pose_cost_y,
                                                                                     fitted.response.governor.pose_cost_y)


def test_fit_makes_the_avatars_own_curves_and_takes_off_cross_talk():
    """An avatar whose jaw also lowers its smile reading and half-closes its eyes, whose smile moves half as
    much as its jaw, and whose brows do not move: asked changes show at the expression scale, the jaw's smile
    is cancelled (the smile's cross-talk only: the eyes' is left alone), the brows are left still."""
    enc = load_encoder()
    measure, shown = expressive_avatar(enc, {"jaw": {"jawOpen": 0.4, "mouthSmileLeft": -0.1, "mouthSmileRight": -0.1,
                                                     "eyeBlinkLeft": 0.1, "eyeBlinkRight": 0.1},
                                             "smile": {"mouthSmileLeft": 0.2, "mouthSmileRight": 0.2},
                                             "blink": {"eyeBlinkLeft": 0.5, "eyeBlinkRight": 0.5}})
    fitted = fit_to_avatar(enc, measure)
    scale = enc.meta["expression_scale"]
    assert fitted.meta["fitted_to_avatar"]["left_still"] == ["brows"]

    def change(**asked) -> np.ndarray:
        delta = np.zeros(NUM_SIGNALS, np.float32)
        for sig, v in asked.items():
            delta[SIGNAL_INDEX[sig]] = v
        return shown(fitted.coefficients(delta)) - shown(np.zeros(len(enc.names)))

    jaw = change(jawOpen=0.3)
    assert jaw[SIGNAL_INDEX["jawOpen"]] == pytest.approx(0.3 * scale["jaw"], abs=0.01)
    assert abs(jaw[SIGNAL_INDEX["mouthSmileLeft"]]) < 0.01  # the jaw's cross-talk taken off
    assert jaw[SIGNAL_INDEX["eyeBlinkLeft"]] == pytest.approx(0.1 * 0.3 * scale["jaw"] / 0.4, abs=0.005)  # not here
    assert pair(fitted) == (enc.names.index("smile"), enc.names.index("jaw"))  # the jaw's smile is taken off there
    fitted = without(fitted, cross=None, conditioned=None)
    assert change(jawOpen=0.3)[SIGNAL_INDEX["mouthSmileLeft"]] < -0.03  # without it the smile would drop
    smile = change(mouthSmileLeft=0.3, mouthSmileRight=0.3)  # within the half-strength smile's reach (0.4)
    assert smile[SIGNAL_INDEX["mouthSmileLeft"]] == pytest.approx(0.3 * scale["smile"], abs=0.01)
    assert change(browInnerUp=0.5)[SIGNAL_INDEX["browInnerUp"]] == 0
    assert fitted.coefficients(np.eye(NUM_SIGNALS, dtype=np.float32)[SIGNAL_INDEX["browInnerUp"]])[3] == 0


def test_fit_follows_a_jaw_and_smile_that_do_not_add_up(monkeypatch):
    """An avatar whose opening jaw lowers its smile reading by 0.1 per unit, and whose smile direction rises twice
    as fast on an open jaw (the product term): the smile is measured again on the open jaw, so a jaw alone shows
    no smile and a smile asked with the jaw open shows as asked. Taking the jaw's smile off as cross-talk alone
    asks the smile direction for too much there."""
    enc = load_encoder()
    smile = {"mouthSmileLeft": 0.1, "mouthSmileRight": 0.1}
    measure, shown = expressive_avatar(enc, {"jaw": {"jawOpen": 0.4, "mouthSmileLeft": -0.1, "mouthSmileRight": -0.1},
                                             "smile": smile}, together={("jaw", "smile"): smile})
    scale = enc.meta["expression_scale"]
    jaw_open = 0.4 / scale["jaw"]  # asks the jaw direction for coefficient 1.0

    def change(fit, **asked) -> float:
        delta = np.zeros(NUM_SIGNALS, np.float32)
        for sig, v in asked.items():
            delta[SIGNAL_INDEX[sig]] = v
        return float((shown(fit.coefficients(delta)) - shown(np.zeros(len(enc.names))))[SIGNAL_INDEX["mouthSmileLeft"]])

    described = []
    fitted = fit_to_avatar(enc, lambda off, describe: described.append(describe) or measure(off, describe))
    smiles = 1 + int(np.count_nonzero(enc.response.governor.cost_c[enc.names.index("smile")]))  # on the open jaw: no dlib there
    assert described.count(False) == len(CONDITION_LEVELS) * smiles  # every head probe is described: its costs
    assert pair(fitted) == (enc.names.index("smile"), enc.names.index("jaw"))
    assert fitted.coefficients(np.eye(NUM_SIGNALS, dtype=np.float32)[SIGNAL_INDEX["jawOpen"]] * jaw_open)[0] == \
        pytest.approx(1.0, abs=0.02)
    assert change(fitted, jawOpen=jaw_open) == pytest.approx(0.0, abs=0.005)
    assert change(fitted, jawOpen=jaw_open, mouthSmileLeft=0.15, mouthSmileRight=0.15) == \
        pytest.approx(0.15 * scale["smile"], abs=0.01)
    assert change(fitted, mouthSmileLeft=0.1, mouthSmileRight=0.1) == pytest.approx(0.1 * scale["smile"], abs=0.01)
    saved = fitted.response.tensors()
    assert pair(reloaded(fitted, saved)) == pair(fitted)
    for bad in ({"cond_c": fitted.response.conditioned.c + 0.1}, {"cond_pair": (1, 1)}, {"cond_x": fitted.response.conditioned.x[:, ::-1]}):
        with pytest.raises(ValueError, match="conditioned curve"):
            reloaded(fitted, {**saved, **{k: np.asarray(v) for k, v in bad.items()}})
    monkeypatch.setattr("live.avatar_fit.CONDITIONED", {})
    additive = fit_to_avatar(enc, measure)
    assert pair(additive) is None and change(additive, jawOpen=jaw_open) > 0.03  # the smile overshoots


def test_fit_takes_off_the_avatars_own_head_turn_gain():
    """An avatar that turns 0.8 degree per degree of yaw asked and 1.6 per degree of pitch: its yaw row is
    divided by 0.8, its pitch row by the largest correction trusted (1.4), and the costs are per degree shown.
    One whose head does not visibly turn keeps the encoder's rows."""
    enc = load_encoder()
    measure, _ = expressive_avatar(enc, {"jaw": {"jawOpen": 0.4}}, turns={"yaw": 0.8, "pitch": 1.6})
    fitted = fit_to_avatar(enc, measure)
    assert fitted.meta["fitted_to_avatar"]["pose_gain_corrected"] == [0.8, 1.4]
    for angle, gain in (("yaw", 0.8), ("pitch", 1.4)):
        i = SIGNAL_INDEX[angle]
        assert np.allclose(fitted.response.matrix[i], enc.response.matrix[i] / gain, rtol=1e-5)
    still = fit_to_avatar(enc, expressive_avatar(enc, {"jaw": {"jawOpen": 0.4}}, turns={"yaw": 0.1})[0])
    assert still.meta["fitted_to_avatar"]["pose_gain_corrected"] == [1.0, 1.0]
    assert np.array_equal(still.response.matrix, enc.response.matrix)
    assert np.allclose(fitted.response.governor.pose_cost, still.response.governor.pose_cost / [0.8, 1.4], rtol=1e-4)


def test_fit_takes_off_what_the_avatars_head_turn_does_to_its_smile():
    """An avatar whose head rows lower its smile reading by 0.01 per degree of yaw (and turn it 0.8 degree per
    degree asked), raise it by 0.005 per degree of pitch, open its jaw by 0.005 and close its eyes by 0.004 per
    degree of yaw: a turn alone shows no smile, no jaw and no blink, a smile asked while turned shows as asked;
    without the correction the turn's smile shows. The brows' reading is not corrected."""
    enc = load_encoder()
    smile = {"mouthSmileLeft": 0.2, "mouthSmileRight": 0.2}
    measure, _ = expressive_avatar(
        enc, {"jaw": {"jawOpen": 0.4}, "smile": smile, "blink": {"eyeBlinkLeft": 0.3, "eyeBlinkRight": 0.3}},
        turns={"yaw": 0.8, "pitch": 1.0},
        turn_signals={"yaw": {"mouthSmileLeft": -0.01, "mouthSmileRight": -0.01, "jawOpen": 0.005,
                              "eyeBlinkLeft": 0.004, "eyeBlinkRight": 0.004, "browInnerUp": 0.005},
                      "pitch": {"mouthSmileLeft": 0.005, "mouthSmileRight": 0.005}})
    fitted = fit_to_avatar(enc, measure)
    scale = enc.meta["expression_scale"]

    def change(fit, **asked) -> np.ndarray:
        """What the avatar's tracked signals show for an asked change, through the whole encoder."""
        delta = np.zeros(NUM_SIGNALS, np.float32)
        for sig, v in asked.items():
            delta[SIGNAL_INDEX[sig]] = v
        return measure(fit(delta), False)[1] - measure(fit(np.zeros(NUM_SIGNALS, np.float32)), False)[1]

    # read at +-16 and the cross-talk's own +-8 degree probes (degrees asked of the gain-corrected rows), not at the
    # cost table's +-2 and +-4
    assert fitted.response.pose_cross.x[0] == pytest.approx(np.array([-16, -8, 0, 8, 16]) * 0.8, abs=0.01)
    ends = fitted.meta["fitted_to_avatar"]["pose_cross_at_ends"]["smile"]
    assert ends["yaw"] == pytest.approx([0.16, -0.16], abs=0.005) and ends["pitch"] == pytest.approx([-0.08, 0.08],
                                                                                                   abs=0.005)
    turn = {"yaw": 8 / POSE_SCALE, "pitch": 4 / POSE_SCALE}  # degrees shown: 8 (yaw) and 4 (pitch)
    assert change(fitted, **turn)[SIGNAL_INDEX["yaw"]] * POSE_SCALE == pytest.approx(8, abs=0.05)
    assert change(fitted, **turn)[SIGNAL_INDEX["mouthSmileLeft"]] == pytest.approx(0.0, abs=0.005)
    assert change(fitted, **turn, mouthSmileLeft=0.1, mouthSmileRight=0.1)[SIGNAL_INDEX["mouthSmileLeft"]] == \
        pytest.approx(0.1 * scale["smile"], abs=0.01)
    assert change(fitted, **turn)[SIGNAL_INDEX["jawOpen"]] == pytest.approx(0.0, abs=0.005)
    assert change(fitted, **turn)[SIGNAL_INDEX["eyeBlinkLeft"]] == pytest.approx(0.0, abs=0.005)
    assert change(fitted, **turn)[SIGNAL_INDEX["browInnerUp"]] == pytest.approx(0.005 * 10, abs=0.005)  # left alone
    saved = reloaded(fitted, fitted.response.tensors())
    assert np.array_equal(saved.response.pose_cross.y, fitted.response.pose_cross.y)
    with pytest.raises(ValueError, match="head-turn cross-talk"):
        reloaded(fitted, {**fitted.response.tensors(), "pose_cross_x": fitted.response.pose_cross.x[:, ::-1]})
    fitted = without(fitted, pose_cross=None)
    assert change(fitted, **turn)[SIGNAL_INDEX["mouthSmileLeft"]] == pytest.approx(-0.01 * 10 + 0.005 * 4, abs=0.005)


def test_fit_takes_off_the_head_turn_an_expression_makes():
    """An avatar whose jaw direction turns its head 4 degrees of yaw and 3 of pitch per unit coefficient (and turns
    0.8 degree per degree asked): fitted, an opening jaw shows no yaw and the jaw as before, and the pitch a real
    opening jaw reads (REAL_JAW_PITCH per unit of jawOpen), which the driver's pitch carries. Without the table the
    jaw turns the head again."""
    enc = load_encoder()
    measure, _ = expressive_avatar(enc, {"jaw": {"jawOpen": 0.4, "yaw": 4 / POSE_SCALE, "pitch": 3 / POSE_SCALE}},
                                   turns={"yaw": 0.8, "pitch": 1.0})
    fitted = fit_to_avatar(enc, measure)
    jaw = enc.names.index("jaw")

    def shown(fit, **asked) -> np.ndarray:
        delta = np.zeros(NUM_SIGNALS, np.float32)
        for sig, v in asked.items():
            delta[SIGNAL_INDEX[sig]] = v
        return measure(fit(delta), False)[1] - measure(fit(np.zeros(NUM_SIGNALS, np.float32)), False)[1]

    top = float(fitted.response.expression_turn.c[jaw, -1])
    own_pitch = 3 - REAL_JAW_PITCH * 0.4
    assert fitted.meta["fitted_to_avatar"]["expression_turn_at_ends"]["jaw"] == pytest.approx([4 * top, own_pitch * top],
                                                                                             abs=0.05)
    opened = shown(fitted, jawOpen=0.3)
    assert opened[SIGNAL_INDEX["jawOpen"]] > 0.1
    assert opened[SIGNAL_INDEX["yaw"]] * POSE_SCALE == pytest.approx(0.0, abs=0.05)
    c = fitted.coefficients(np.eye(NUM_SIGNALS, dtype=np.float32)[SIGNAL_INDEX["jawOpen"]] * 0.3)[jaw]
    assert opened[SIGNAL_INDEX["pitch"]] * POSE_SCALE == pytest.approx(REAL_JAW_PITCH * 0.4 * c, abs=0.05)
    turned = shown(fitted, jawOpen=0.3, yaw=6 / POSE_SCALE)  # a turn asked with it still shows whole
    assert turned[SIGNAL_INDEX["yaw"]] * POSE_SCALE == pytest.approx(6, abs=0.1)
    saved = reloaded(fitted, fitted.response.tensors())
    assert np.array_equal(saved.response.expression_turn.y, fitted.response.expression_turn.y)
    with pytest.raises(ValueError, match="expression head-turn"):
        reloaded(fitted, {**fitted.response.tensors(), "turn_y": fitted.response.expression_turn.y[:, :, :1]})
    plain = without(fitted, expression_turn=None)
    assert shown(plain, jawOpen=0.3)[SIGNAL_INDEX["yaw"]] * POSE_SCALE == pytest.approx(4 * c, abs=0.05)


def test_the_turn_table_never_adds_pitch_the_avatar_did_not_make():
    """Of the pitch an avatar's expression reads, only what is past a real opening jaw's is its own; where its jaw
    reads less, nothing is taken off (taking the difference would add pitch); opposite to a real jaw's, all of it."""
    for pitch, own in ((4.0, 2.4), (1.0, 0.0), (0.0, 0.0), (-2.0, -2.0)):
        change = np.zeros(NUM_SIGNALS)
        change[SIGNAL_INDEX["jawOpen"]] = 1.6 / REAL_JAW_PITCH  # a real jaw that open reads 1.6 degrees
        change[SIGNAL_INDEX["pitch"]] = pitch / POSE_SCALE
        change[SIGNAL_INDEX["yaw"]] = 3 / POSE_SCALE
        assert own_turn(change) == pytest.approx([3, own], abs=1e-6), pitch


def test_head_turn_cross_talk_leaves_out_probes_where_the_face_was_lost():
    enc = load_encoder()
    j = len(enc.names)
    smile = enc.names.index("smile")
    seen = [(16.0, np.ones(j)), (-16.0, -np.ones(j)), (-8.0, np.full(j, 0.3))]
    tables = pose_cross(enc.response, [seen + [(8.0, np.full(j, np.nan))], seen + [(8.0, np.full(j, 0.5))]])
    assert list(tables["pose_cross_x"][0][:4]) == [-16, -8, 0, 16] and list(tables["pose_cross_x"][1]) == [
        -16, -8, 0, 8, 16]
    assert list(tables["pose_cross_y"][0, :4, smile]) == pytest.approx([-1, 0.3, 0, 1])
    brows = enc.names.index("brows")
    assert "brows" not in POSE_CROSS_CORRECTED and not np.any(tables["pose_cross_y"][:, :, brows])  # not corrected


def test_no_face_at_neutral_keeps_the_mean_costs(tmp_path, caplog):
    enc = load_encoder()
    assert fit_to_avatar(enc, lambda off, describe: (None, None)) is None
    with caplog.at_level(logging.WARNING, logger="live.avatar_fit"):
        assert AvatarFits(tmp_path).get(enc, "faceless", lambda: (lambda off, describe: (None, None))) is enc
    assert "mean costs" in caplog.text and not list(tmp_path.iterdir())


def test_fits_are_cached_and_a_damaged_cache_is_fitted_again(tmp_path, caplog):
    enc = load_encoder()
    measure, _ = linear_avatar(enc, seed=1)
    fits = AvatarFits(tmp_path)
    first = fits.get(enc, "avatar-a", lambda: measure)
    path = fits.path(enc, "avatar-a")
    assert path.is_file() and path.with_suffix(".json").is_file()

    def must_not_render():
        raise AssertionError("a cached fit must not render")

    again = fits.get(enc, "avatar-a", must_not_render)
    assert np.array_equal(again.response.governor.cost_id, first.response.governor.cost_id) and np.array_equal(again.response.governor.pose_cost, first.response.governor.pose_cost)
    assert fits.path(enc, "avatar-b") != path  # another avatar, another entry
    path.write_bytes(b"not a safetensors file")
    with caplog.at_level(logging.WARNING, logger="live.avatar_fit"):
        redone = fits.get(enc, "avatar-a", lambda: measure)
    assert "damaged" in caplog.text and np.array_equal(redone.response.governor.cost_id, first.response.governor.cost_id)


def test_the_cache_keeps_the_most_recently_used_fits(tmp_path):
    """A cache hit marks its fit used; a new fit prunes all but the newest KEEP_FITS (weights and .json)."""
    import os

    enc = load_encoder()
    measure, _ = linear_avatar(enc, seed=1)
    fits = AvatarFits(tmp_path)
    fits.get(enc, "avatar-a", lambda: measure)
    kept = fits.path(enc, "avatar-a")
    os.utime(kept, (1.0, 1.0))  # long unused...
    fits.get(enc, "avatar-a", lambda: measure)
    assert kept.stat().st_mtime > 1.0  # ...until driven again
    old = []
    for i in range(4):
        p = tmp_path / f"avatar-old{i}.safetensors"
        p.write_bytes(b"x")
        p.with_suffix(".json").write_text("{}")
        os.utime(p, (10.0 + i, 10.0 + i))
        old.append(p)
    (tmp_path / "notes.txt").write_text("not a fit")
    fits.prune(keep=3)
    assert kept.is_file() and old[3].is_file() and old[2].is_file()  # the 3 most recently used
    assert not old[0].exists() and not old[0].with_suffix(".json").exists() and not old[1].exists()
    assert (tmp_path / "notes.txt").is_file()


def test_linear_encoder_has_nothing_to_fit(tmp_path):
    from live.models.encoder import WEIGHTS_PATH

    linear = load_encoder(WEIGHTS_PATH)
    assert AvatarFits(tmp_path).get(linear, "x", lambda: (lambda off, describe: (None, None))) is linear


def test_fit_on_a_generated_face(tmp_path):
    """Real generator, MediaPipe and dlib: costs grow away from zero, the head angles cost identity, the jaw
    has a curve of its own."""
    import torch

    from live.assets import AssetStore
    from live.avatar_fit_cache import fit_encoder
    from live.models.generator import load_mobilestylegan
    from live.render import seed_identity

    real = AssetStore(progress=False)
    gen = load_mobilestylegan(real)
    dlib_models = {n: real.resolve(n) for n in ("dlib_shape_predictor_68", "dlib_face_descriptor", "face_landmarker")}
    store = AssetStore(cache_dir=tmp_path, paths=dlib_models, progress=False)  # a fresh fit, not a cached one
    enc = load_encoder(generator_sha256=gen.source_sha256)
    with torch.no_grad():
        fitted = fit_encoder(enc, store, gen, seed_identity(gen, 3), progress=False)
    assert fitted is not enc and list((tmp_path / "avatars").glob("avatar-*.safetensors"))
    for c, d in zip(fitted.response.governor.cost_c, fitted.response.governor.cost_id, strict=True):
        zero = int(np.flatnonzero(c == 0)[0])
        assert d[zero] == 0 and np.all(np.diff(d[zero:]) >= 0) and np.all(np.diff(d[:zero + 1]) <= 0)
        assert d.max() > 0.2  # the largest coefficients change the face measurably
    assert np.all(fitted.response.governor.pose_cost > 0.005) and np.all(fitted.response.governor.pose_cost < 0.1)
    reach = fitted.meta["fitted_to_avatar"]["reach_asked"]  # its own curves: the jaw opens on this face
    assert reach["jaw"][1] > 0.2 and fitted.response.cross.x.shape == (*fitted.response.cross.c.shape, len(enc.names))
    smile, jaw = enc.names.index("smile"), enc.names.index("jaw")  # the smile measured again on the open jaw
    assert pair(fitted) == (smile, jaw) and list(fitted.response.conditioned.c) == [0.0, 0.5, 1.0, 1.5]
    width = fitted.response.curve_x.shape[1]  # level 0 is the smile's own curve
    assert np.all(fitted.response.cross.x[jaw, :, smile] == 0)
    assert np.array_equal(fitted.response.conditioned.x[0, :width], fitted.response.curve_x[smile])
    assert fitted.meta["fitted_to_avatar"]["pose_cost_per_deg"][0] == pytest.approx(
        float(fitted.response.governor.pose_cost[0]), abs=1e-4)


def test_without_the_dlib_models_the_mean_costs_are_used(tmp_path, caplog):
    """Offline with no dlib models in the cache: a warning, and the encoder as it was (no traceback)."""
    from live.assets import AssetStore
    from live.avatar_fit_cache import fit_encoder
    from live.models.generator import load_mobilestylegan
    from live.render import seed_identity

    gen = load_mobilestylegan(AssetStore(progress=False))
    enc = load_encoder()
    offline = AssetStore(cache_dir=tmp_path, offline=True, progress=False)
    with caplog.at_level(logging.WARNING, logger="live.avatar_fit"):
        assert fit_encoder(enc, offline, gen, seed_identity(gen, 4), progress=False) is enc
    assert "cannot fit the encoder to this avatar" in caplog.text and "--no-avatar-fit" in caplog.text
