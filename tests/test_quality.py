"""The identity metric (dlib) on real faces, and benchmarks/quality.py on the scripted sequence."""

import json
import sys

import numpy as np
import pytest
from conftest import REPO, run_py


def test_identity_metric_tells_people_apart():
    pytest.importorskip("dlib", reason="pip install 'live[quality]'")
    from live.assets import AssetStore
    from live.metrics.identity import SAME_PERSON, IdentityMetric
    from live.samples import astronaut, grace_hopper

    m = IdentityMetric(AssetStore(progress=False))
    a, h = m.descriptor(astronaut()), m.descriptor(grace_hopper())
    mirrored = m.descriptor(np.ascontiguousarray(astronaut()[:, ::-1]))
    assert a.shape == (128,)
    assert m.distance(a, mirrored) < SAME_PERSON < m.distance(a, h)
    assert m.descriptor(np.full((200, 200, 3), 128, np.uint8)) is None


def test_quality_benchmark_on_the_scripted_sequence(tmp_path):
    pytest.importorskip("dlib", reason="pip install 'live[quality]'")
    out, png = tmp_path / "q.json", tmp_path / "q.png"
    run_py(f"""
import sys, json
sys.path.insert(0, {str(REPO / 'benchmarks')!r})
import quality
quality.SHARED = quality.Path("/nonexistent")  # force the scripted sequence
quality.main(["--identities", "3", "--max-frames", "200", "--id-stride", "10", "--json", {str(out)!r},
              "--plot", {str(png)!r}])
print(json.dumps({{"ok": True}}))
""", timeout=600)
    r = json.loads(out.read_text())
    assert "not the published CSIM/FID" in r["note"]
    pair = r["pairs"][0]
    assert pair["clip"] == "scripted" and pair["avatar_face_found"] > 0.9
    assert pair["identity"]["median"] < 0.6
    assert r["overall"]["yaw"]["corr_pooled"] > 0.8  # the scripted head turn reaches the avatar
    assert all(r["overall"][n]["ratio_pooled"] is not None for n in ("yaw", "jawOpen", "mouthSmileLeft"))
    for n in ("jawOpen", "eyeBlinkLeft", "mouthSmileLeft"):  # the avatar's reach is known for each expression
        assert 0 <= r["overall"][n]["reach_bound_pooled"] < 1 and 0 <= pair["signals"][n]["reach_bound"] < 1
    assert png.stat().st_size > 10_000


def test_reach_bound_clips_the_driver_to_what_the_avatar_shows():
    """The bound's parts on the committed encoder: each blendshape's reach is its expression's curve ends at the
    expression's scale, and the bound is the error of the driver clipped to them."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import quality

    from live.models.encoder import LinearEncoder, load_encoder

    enc = load_encoder()
    ends = quality.reach(enc)
    jaw = enc.names.index("jaw")
    assert ends["jawOpen"] == pytest.approx((0.0, float(enc.curve_x[jaw].max()) * enc.meta["expression_scale"]["jaw"]))
    assert ends["eyeBlinkLeft"] == ends["eyeBlinkRight"] and set(ends) == set(quality.BLENDS)
    assert quality.reach(LinearEncoder(np.zeros((55, 512), np.float32), 1)) == {}
    rel = np.zeros(9, np.float32)
    rel[3] = 5.0  # jawOpen far past the reach, the rest unknown
    assert quality.clipped(rel, {"jawOpen": (0.0, 0.3)})[0] == pytest.approx(0.3)
    assert np.isnan(quality.clipped(rel, {"jawOpen": (0.0, 0.3)})[1:]).all()
    d = np.array([0.5, -0.2, 0.1])
    assert quality.bound_ratio(d, np.clip(d, -0.1, 0.3)) == pytest.approx(0.3 / 0.8)
    assert quality.bound_ratio(d, np.array([0.3, np.nan, 0.1])) is None
