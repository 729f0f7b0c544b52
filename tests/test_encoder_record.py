"""The encoder computes what it computed before the encoder package (live.encoder) replaced the old
CalibratedEncoder: tests/data/encoder_reference.npz holds that class's coefficients, shown changes, limited head
angles and offset norms (recorded at commit eb6db3c, before it was deleted) on driving signals from the scripted
demo and a seeded random driver, for the committed encoder, its uncapped-head variant, and encoders fitted to four
fake avatars whose responses exercise every measured table. The new code matched it bit for bit when it was
recorded; the tolerance below only allows for another CPU's BLAS rounding the matrix products differently.
Recorded again on 2026-12-07 when the avatar fit began to take off the head turn an expression makes (FIT_VERSION 13),
and again when it stopped adding pitch an avatar's jaw did not make (FIT_VERSION 14).

When the encoder's behaviour is changed on purpose, record the reference again:
    python tests/test_encoder_record.py --record
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from test_avatar_fit import expressive_avatar, linear_avatar

from live.avatar_fit import fit_to_avatar
from live.encoder import load_encoder
from live.models.encoder import NUM_SIGNALS, POSE_SCALE, SIGNAL_INDEX
from live.stages.encoder import MAX_DELTA

REFERENCE = Path(__file__).with_name("data") / "encoder_reference.npz"
HEAD = [SIGNAL_INDEX["yaw"], SIGNAL_INDEX["pitch"]]
SMILE = {"mouthSmileLeft": 0.2, "mouthSmileRight": 0.2}


def driver_changes() -> np.ndarray:
    """[N,55] signal changes: the scripted demo's against its first frame (kept in the reference: the demo has
    since gained a pout, a press and a squint), then a seeded random driver within the
    encoder stage's clamp (large asks make the identity governor and the head's cap act)."""
    scripted = np.load(REFERENCE)["scripted_changes"]  # the scripted demo's as it was when recorded (7.8 s)
    rng = np.random.default_rng(7)
    random = rng.uniform(-1, 1, size=(300, NUM_SIGNALS)).astype(np.float32) * MAX_DELTA * \
        rng.uniform(0, 1, size=(300, 1)).astype(np.float32)
    return np.concatenate([scripted, random]).astype(np.float32)


def avatars(enc):
    """Encoders fitted to four fake avatars: costs only; own curves with cross-talk; a jaw and smile that do not
    add up, with a head that turns and a jaw that turns it; a head turn that changes the smile and blink."""
    yield fit_to_avatar(enc, linear_avatar(enc, seed=1)[0])
    yield fit_to_avatar(enc, expressive_avatar(enc, {"jaw": {"jawOpen": 0.4, "mouthSmileLeft": -0.1,
                                                             "mouthSmileRight": -0.1, "eyeBlinkLeft": 0.1},
                                                     "smile": SMILE, "blink": {"eyeBlinkLeft": 0.5,
                                                                               "eyeBlinkRight": 0.5}})[0])
    yield fit_to_avatar(enc, expressive_avatar(enc, {"jaw": {"jawOpen": 0.4, "mouthSmileLeft": -0.1,
                                                             "mouthSmileRight": -0.1, "yaw": 3 / POSE_SCALE},
                                                     "smile": SMILE,
                                                     "brows": {"browInnerUp": 0.3}},
                                               turns={"yaw": 0.9, "pitch": 1.2},
                                               together={("jaw", "smile"): SMILE})[0])
    yield fit_to_avatar(enc, expressive_avatar(enc, {"jaw": {"jawOpen": 0.5}, "smile": SMILE,
                                                     "blink": {"eyeBlinkLeft": 0.4, "eyeBlinkRight": 0.4}},
                                               turns={"yaw": 1.0, "pitch": 1.0},
                                               turn_signals={"yaw": {"mouthSmileLeft": -0.01, "eyeBlinkLeft": 0.005},
                                                             "pitch": {"mouthSmileRight": 0.01}})[0])


def encoders() -> list:
    enc = load_encoder()
    return [enc, enc.with_governor(pose_share=1), *avatars(enc)]


def outputs(enc, deltas: np.ndarray) -> dict[str, np.ndarray]:
    """What the encoder makes of each change: coefficients [N,J], shown [N,J], the limited head [N,2] and the
    offset's squared norm [N] (float64)."""
    return {"coefficients": np.stack([enc.coefficients(d) for d in deltas]).astype(np.float32),
            "shown": np.stack([enc.shown(d) for d in deltas]).astype(np.float32),
            "head": np.stack([enc._governed(d)[0][HEAD] for d in deltas]).astype(np.float32),
            "offset_sq": np.array([float(np.sum(enc(d).astype(np.float64) ** 2)) for d in deltas])}


def test_the_encoder_computes_what_the_old_one_did():
    reference = np.load(REFERENCE)
    deltas = driver_changes()
    features = {"cross": 0, "conditioned": 0, "pose_cross": 0, "pose_cost_table": 0, "expression_turn": 0}
    for n, enc in enumerate(encoders()):
        r = enc.response
        features["cross"] += r.cross is not None
        features["conditioned"] += r.conditioned is not None
        features["pose_cross"] += r.pose_cross is not None and bool(np.any(r.pose_cross.y))
        features["pose_cost_table"] += r.governor.pose_cost_x is not None
        features["expression_turn"] += r.expression_turn is not None and bool(np.any(r.expression_turn.y[..., 0]))
        got = outputs(enc, deltas)
        for name, values in got.items():
            np.testing.assert_allclose(values, reference[f"{name}_{n}"], rtol=1e-6, atol=1e-7,
                                       err_msg=f"encoder {n}: {name}")
        governed = sum(not np.all(enc._governed(d)[2] == 1) for d in deltas)
        assert governed > 10  # the identity governor acted on these drivers
    assert all(n >= 1 for n in features.values()), features  # every measured table was exercised


@pytest.mark.parametrize("step", ["limit_pose", "govern", "expression_asks", "take_off_expression_turn"])
def test_the_comparison_fails_when_a_step_changes(monkeypatch, step):
    """The comparison above can fail: a step that rounds differently by 1e-4 is caught."""
    from live.encoder import steps

    reference = np.load(REFERENCE)
    enc = encoders()[2]
    original = getattr(steps, step)

    def nudged(*args, **kwargs):
        out = original(*args, **kwargs)
        if isinstance(out, tuple):
            return (out[0] * np.float32(1.0001), *out[1:])
        return out * np.float32(1.0001)

    monkeypatch.setattr(steps, step, nudged)
    got = outputs(enc, driver_changes())
    assert any(not np.allclose(got[name], reference[f"{name}_2"], rtol=1e-6, atol=1e-7) for name in got)


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    deltas = driver_changes()
    np.savez_compressed(REFERENCE, scripted_changes=np.load(REFERENCE)["scripted_changes"],
                        **{f"{name}_{n}": v for n, enc in enumerate(encoders())
                           for name, v in outputs(enc, deltas).items()})
    print(f"wrote {REFERENCE}")
