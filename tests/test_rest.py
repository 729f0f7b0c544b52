"""The avatar's neutral rest (live.rest): the walk back along the smile direction, its identity budget, the cache, and
a real smiling face (generated identity 0) taken back."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_py

from live.models.encoder import NUM_SIGNALS, SIGNAL_INDEX
from live.rest import REST_BUDGET, SMILE_TARGET, Rest, RestCache, neutral_rest

K = 2


def fake_avatar(smile_at_rest: float, smile_per_unit: float, cost_per_unit: float, direction: np.ndarray):
    """A ReadOffset whose smile reading falls by `smile_per_unit` and whose descriptor moves `cost_per_unit` per unit
    of the offset's coefficient along `direction` (negative coefficients: less smile); it counts its renders."""
    calls = []

    def read(offset: np.ndarray, describe: bool = True):
        c = float(np.sum(offset * direction) / np.sum(direction * direction))
        calls.append(c)
        signals = np.zeros(NUM_SIGNALS, np.float32)
        signals[SIGNAL_INDEX["mouthSmileLeft"]] = signals[SIGNAL_INDEX["mouthSmileRight"]] = \
            max(0.0, smile_at_rest + smile_per_unit * c)
        descriptor = np.zeros(128, np.float32)
        descriptor[0] = abs(c) * cost_per_unit
        return (descriptor if describe else None), signals

    read.calls = calls
    return read


def direction() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(K, 512)).astype(np.float32)


def test_a_smiling_rest_is_walked_back_to_the_target():
    d = direction()
    read = fake_avatar(0.8, 0.5, 0.1, d)
    rest = neutral_rest(read, d)
    assert rest.smile_before == 0.8 and rest.smile_after <= SMILE_TARGET
    assert rest.coefficient == -1.5  # 0.8 - 0.5 * 1.25 = 0.175 > 0.15; at -1.5: 0.05
    assert rest.identity_cost == 0.15 and rest.renders == 7 == len(read.calls)
    assert np.allclose(rest.offset(d), -1.5 * d[None])


def test_the_walk_stops_before_the_identity_budget():
    d = direction()
    rest = neutral_rest(fake_avatar(0.8, 0.5, 0.3, d), d)  # -0.75 costs 0.225, -1.0 costs 0.3 > budget
    assert rest.coefficient == -0.75 and rest.identity_cost <= REST_BUDGET
    assert abs(rest.smile_after - 0.425) < 1e-6  # partly taken back


def test_a_face_that_does_not_smile_keeps_its_rest_and_a_lost_face_gives_none():
    d = direction()
    read = fake_avatar(0.1, 0.5, 0.1, d)
    rest = neutral_rest(read, d)
    assert rest.coefficient == 0 and rest.renders == 1 == len(read.calls)
    assert neutral_rest(lambda offset, describe=True: (None, None), d) is None


def test_the_cache_measures_once_and_measures_again_over_a_damaged_record(tmp_path):
    d = direction()
    made = []

    def make_reader():
        made.append(1)
        return fake_avatar(0.8, 0.5, 0.1, d)

    cache = RestCache(tmp_path)
    first = cache.get("identity-a", d, make_reader)
    assert cache.get("identity-a", d, make_reader) == first and len(made) == 1
    assert not list(tmp_path.glob(".rest.*"))  # written then renamed
    cache.path("identity-a", d).write_text("{not json")
    assert cache.get("identity-a", d, make_reader) == first and len(made) == 2
    assert isinstance(first, Rest) and cache.path("identity-b", d) != cache.path("identity-a", d)


def test_generated_identity_0_smiles_less_at_its_neutral_rest(landmarker_path):
    """Seed 0 smiles ~0.76 at rest (MediaPipe). With --rest neutral its avatar at rest reads at least 0.2 less smile,
    within the identity budget of its own rest; its own rest is one render at -rest_offset away."""
    res = run_py("""
        import json
        import numpy as np, torch
        torch.set_grad_enabled(False)
        from live.assets import AssetStore
        from live.avatar import load_avatar
        from live.config import Config
        from live.probe import FaceReader
        from live.rest import smile
        from live.stages import avatar_render

        store = AssetStore(progress=False)
        cfg = Config()
        cfg.synthesis.seed = 0
        cfg.encoder.rest = "neutral"
        avatar = load_avatar(cfg, store, fit=False)
        render = avatar_render(cfg, avatar)
        reader = FaceReader(store)
        rest, own = render(), render(-avatar.rest_offset)
        s_rest, s_own = smile(reader.track(rest)[0]), smile(reader.track(own)[0])
        cost = float(np.linalg.norm(reader.describe(rest) - reader.describe(own)))
        reader.close()
        print(json.dumps({"rest": s_rest, "own": s_own, "cost": cost}))
    """)
    assert res["own"] - res["rest"] >= 0.2, res
    assert res["cost"] <= REST_BUDGET + 0.01, res  # measured by the same dlib: within the budget it was chosen by


def test_auto_rest_is_neutral_only_with_the_warp():
    from live.avatar import resting_face
    from live.config import Config

    cfg = Config()
    assert cfg.encoder.rest == "auto" and resting_face(cfg) == "own"
    cfg.warp.enabled = True
    assert resting_face(cfg) == "neutral"
    cfg.encoder.rest = "own"
    assert resting_face(cfg) == "own"
    cfg.encoder.rest = "smiling"
    with pytest.raises(ValueError, match="auto, own or neutral"):
        resting_face(cfg)
