"""The encoder package (live.encoder: a typed AvatarResponse record and one function per step) computes exactly
what the old CalibratedEncoder computes: identical coefficients, shown changes and offsets, bit for bit, on
driving signals from the scripted demo and a seeded random driver, for the committed encoder and for encoders
fitted to four different avatars (fake ones whose responses exercise every measured table)."""

import numpy as np
import pytest

from live.demo import ScriptedSource
from live.encoder import Encoder
from live.models.encoder import NUM_SIGNALS, face_signals, load_encoder
from live.avatar_fit import fit_to_avatar
from live.stages.encoder import MAX_DELTA
from test_avatar_fit import expressive_avatar, linear_avatar

SMILE = {"mouthSmileLeft": 0.2, "mouthSmileRight": 0.2}


def driver_changes() -> np.ndarray:
    """[N,55] signal changes: the scripted demo's against its first frame, then a seeded random driver within the
    encoder stage's clamp (large asks make the identity governor and the head's cap act)."""
    src = ScriptedSource(fps=25)
    faces = []
    while (f := src.read()) is not None:
        faces.append(face_signals(f.face))
    scripted = np.array(faces) - faces[0]
    rng = np.random.default_rng(7)
    random = rng.uniform(-1, 1, size=(300, NUM_SIGNALS)).astype(np.float32) * MAX_DELTA * \
        rng.uniform(0, 1, size=(300, 1)).astype(np.float32)
    return np.concatenate([scripted, random]).astype(np.float32)


def avatars(enc):
    """Encoders fitted to four fake avatars: costs only; own curves with cross-talk; a jaw and smile that do not
    add up, with a head that turns; a head turn that changes the smile and blink."""
    yield fit_to_avatar(enc, linear_avatar(enc, seed=1)[0])
    yield fit_to_avatar(enc, expressive_avatar(enc, {"jaw": {"jawOpen": 0.4, "mouthSmileLeft": -0.1,
                                                             "mouthSmileRight": -0.1, "eyeBlinkLeft": 0.1},
                                                     "smile": SMILE, "blink": {"eyeBlinkLeft": 0.5,
                                                                               "eyeBlinkRight": 0.5}})[0])
    yield fit_to_avatar(enc, expressive_avatar(enc, {"jaw": {"jawOpen": 0.4, "mouthSmileLeft": -0.1,
                                                             "mouthSmileRight": -0.1}, "smile": SMILE,
                                                     "brows": {"browInnerUp": 0.3}},
                                               turns={"yaw": 0.9, "pitch": 1.2},
                                               together={("jaw", "smile"): SMILE})[0])
    yield fit_to_avatar(enc, expressive_avatar(enc, {"jaw": {"jawOpen": 0.5}, "smile": SMILE,
                                                     "blink": {"eyeBlinkLeft": 0.4, "eyeBlinkRight": 0.4}},
                                               turns={"yaw": 1.0, "pitch": 1.0},
                                               turn_signals={"yaw": {"mouthSmileLeft": -0.01, "eyeBlinkLeft": 0.005},
                                                             "pitch": {"mouthSmileRight": 0.01}})[0])


def test_new_encoder_is_bit_identical_to_the_old_one():
    enc = load_encoder()
    old_encoders = [enc, enc.with_governor(pose_share=1), *avatars(enc)]
    features = {"cross": 0, "conditioned": 0, "pose_cross": 0, "pose_cost_table": 0}
    deltas = driver_changes()
    for old in old_encoders:
        new = Encoder.from_calibrated(old)
        r = new.response
        features["cross"] += r.cross is not None
        features["conditioned"] += r.conditioned is not None
        features["pose_cross"] += r.pose_cross is not None and bool(np.any(r.pose_cross.y))
        features["pose_cost_table"] += r.governor.pose_cost_x is not None
        governed = 0
        for d in deltas:
            a, b = old(d), new(d)
            assert a.dtype == b.dtype and np.array_equal(a, b)
            assert np.array_equal(old.coefficients(d), new.coefficients(d))
            assert np.array_equal(old.shown(d), new.shown(d))
            governed += not np.all(old._governed(old.limit_pose(d))[1] == 1)
        assert governed > 10  # the identity governor acted on these drivers
    assert all(n >= 1 for n in features.values()), features  # every measured table was exercised


@pytest.mark.parametrize("step", ["limit_pose", "govern", "expression_asks"])
def test_the_comparison_fails_when_a_step_changes(monkeypatch, step):
    """The identity test above can fail: a step that rounds differently is caught."""
    from live.encoder import steps

    enc = next(avatars(load_encoder()))
    original = getattr(steps, step)

    def nudged(*args, **kwargs):
        out = original(*args, **kwargs)
        if isinstance(out, tuple):
            return (out[0] * np.float32(1.0001), *out[1:])
        return out * np.float32(1.0001)

    monkeypatch.setattr(steps, step, nudged)
    new = Encoder.from_calibrated(enc)
    assert any(not np.array_equal(enc(d), new(d)) for d in driver_changes()[:60])
