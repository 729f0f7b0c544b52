"""The identity metric (dlib) on real faces, and benchmarks/quality.py on the scripted sequence."""

import json
import sys

import numpy as np
import pytest
from conftest import REPO, run_py


def test_identity_metric_tells_people_apart():
    pytest.importorskip("dlib", reason="pip install 'live[quality]'")
    from live.assets import AssetStore
    from live.metrics.face_distance import SAME_PERSON, IdentityMetric
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
        # what the encoder asked cannot beat the reach bound, and its ratio is there for every pair too
        assert r["overall"][n]["reach_bound_pooled"] - 1e-3 <= r["overall"][n]["asked_pooled"] < 1.5
        assert pair["signals"][n]["asked"] is not None
        # the blendshape's range [0, 1] from the avatar's resting value: a floor under the reach bound
        assert 0 <= r["overall"][n]["range_bound_pooled"] <= r["overall"][n]["reach_bound_pooled"] + 0.02
    assert png.stat().st_size > 10_000


def test_reach_bound_clips_the_driver_to_what_the_avatar_shows():
    """The bound's parts on the committed encoder: each blendshape's reach is its expression's curve ends at the
    expression's scale, and the bound is the error of the driver clipped to them."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import quality

    from live.encoder import load_encoder
    from live.models.encoder import LinearEncoder

    enc = load_encoder()
    ends = quality.reach(enc)
    jaw = enc.names.index("jaw")
    assert ends["jawOpen"] == pytest.approx((0.0, float(enc.response.curve_x[jaw].max()) * enc.meta["expression_scale"]["jaw"]))
    assert ends["eyeBlinkLeft"] == ends["eyeBlinkRight"] and set(ends) == set(quality.BLENDS)
    assert quality.reach(LinearEncoder(np.zeros((55, 512), np.float32), 1)) == {}
    rel = np.zeros(9, np.float32)
    rel[3] = 5.0  # jawOpen far past the reach, the rest unknown
    assert quality.clipped(rel, {"jawOpen": (0.0, 0.3)})[0] == pytest.approx(0.3)
    assert np.isnan(quality.clipped(rel, {"jawOpen": (0.0, 0.3)})[1:]).all()
    d = np.array([0.5, -0.2, 0.1])
    assert quality.bound_ratio(d, np.clip(d, -0.1, 0.3)) == pytest.approx(0.3 / 0.8)
    assert quality.bound_ratio(d, np.array([0.3, np.nan, 0.1])) is None


def test_asked_puts_each_expression_on_the_blendshapes_it_reads():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import quality

    from live.encoder import load_encoder
    from live.models.encoder import SIGNAL_INDEX, LinearEncoder

    new = enc = load_encoder()
    d = np.zeros(55, np.float32)
    d[SIGNAL_INDEX["jawOpen"]], d[SIGNAL_INDEX["eyeBlinkLeft"]] = 0.2, 0.3
    a, shown = quality.asked(new, d), enc.shown(d)
    assert shown[enc.names.index("jaw")] > 0
    assert a[quality.BLENDS.index("jawOpen")] == pytest.approx(shown[enc.names.index("jaw")])
    blink = shown[enc.names.index("blink")]
    assert 0 < blink < 0.3 and a[1] == a[2] == pytest.approx(blink)  # one blink for both eyes: their mean's
    assert np.isnan(quality.asked(new, None)).all()
    rest, rel = np.zeros(9, np.float32), np.zeros(9, np.float32)
    rest[6], rel[6], rel[3] = 0.74, 0.87, -0.3  # a face smiling at rest can smile 0.26 more; no jaw under 0
    assert quality.ranged(rel, rest)[[0, 3]] == pytest.approx([0.0, 0.26])
    rel[6] = -0.9  # nor un-smile more than it smiles
    assert quality.ranged(rel, rest)[3] == pytest.approx(-0.74)
    assert np.isnan(quality.asked(LinearEncoder(np.zeros((55, 512), np.float32), 1), d)).all()


def test_breakdown_splits_each_identitys_pooled_ratio_into_its_clips(tmp_path, capsys):
    """benchmarks/quality_breakdown.py: per identity, the clips' shares add up to the identity's pooled ratio (its
    errors over its motionless errors, frames weighted), and a bad file is a clear error."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import quality_breakdown

    def pair(clip, seed, frames, error, motionless, **bounds):
        s = {"error": error, "motionless": motionless, "ratio": round(error / motionless, 6), **bounds}
        return {"clip": clip, "seed": seed, "measured": frames, "signals": {"mouthSmileLeft": s}}

    pairs = [pair("a", "0", 100, 0.10, 0.20, range_bound=0.4), pair("b", "0", 50, 0.01, 0.02, range_bound=0.0),
             pair("a", "1", 100, 0.05, 0.20), pair("b", "1", 50, 0.03, 0.02)]
    t = quality_breakdown.breakdown(pairs, "mouthSmileLeft")
    # identity 0: (0.10*100 + 0.01*50) / (0.20*100 + 0.02*50) = 10.5 / 21
    assert t["0"]["total"]["ratio"] == pytest.approx(10.5 / 21)
    assert t["0"]["clips"]["a"]["ratio"] == pytest.approx(10 / 21)
    assert t["0"]["clips"]["b"]["motion"] == pytest.approx(1 / 21)
    assert t["0"]["total"]["range_bound"] == pytest.approx(0.4 * 20 / 21)
    # identity 1's clip b: error larger than its motion (the avatar moves what the driver holds still)
    b = t["1"]["clips"]["b"]
    assert b["ratio"] == pytest.approx(1.5 / 21) and b["ratio"] > b["motion"]
    assert t["1"]["total"]["range_bound"] is None  # unknown where a pair lacks it
    good = tmp_path / "q.json"
    good.write_text(json.dumps({"pairs": pairs}))
    assert quality_breakdown.main([str(good), "--signals", "mouthSmileLeft"]) == 0
    printed = capsys.readouterr().out
    assert "identity 0: ratio 0.500 (range bound 0.381" in printed and "identity 1: ratio 0.310" in printed
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    for argv in ([str(bad)], [str(good), "--signals", "mouthSmile"]):
        with pytest.raises(SystemExit):
            quality_breakdown.main(argv)
