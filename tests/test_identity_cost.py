"""benchmarks/identity_cost.py: its fit, and a run over a generated clip (no shared data needed)."""

import json
import sys

import numpy as np
import pytest
from conftest import REPO, run_py

sys.path.insert(0, str(REPO / "benchmarks"))


def test_nonnegative_least_squares_recovers_costs_and_drops_negative_ones():
    from identity_cost import nonnegative_lstsq

    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (200, 4))
    x = nonnegative_lstsq(a, a @ np.array([0.5, 0.0, 2.0, 1.0]))
    assert np.allclose(x, [0.5, 0.0, 2.0, 1.0], atol=1e-9)
    b = a @ np.array([1.0, -3.0, 0.0, 0.0])  # a negative cost is not a cost: it is dropped, the rest refitted
    assert np.all(nonnegative_lstsq(a, b) >= 0)


def test_identity_cost_on_a_generated_clip(tmp_path):
    pytest.importorskip("dlib", reason="pip install 'live[quality]'")
    clip, out = tmp_path / "generated.mp4", tmp_path / "cost.json"
    run_py(f"""
import sys, json, cv2, numpy as np, torch
sys.path.insert(0, {str(REPO / 'benchmarks')!r})
from live.assets import AssetStore
from live.encoder import load_encoder
from live.models.encoder import SIGNAL_INDEX
from live.models.generator import load_mobilestylegan
from live.render import SynthesisNet, seed_identity, to_uint8
gen = load_mobilestylegan(AssetStore(progress=False)); enc = load_encoder()
net = SynthesisNet(gen, seed_identity(gen, 5), enc.k, 256)
video = cv2.VideoWriter({str(clip)!r}, cv2.VideoWriter_fourcc(*"mp4v"), 25, (256, 256))
with torch.no_grad():
    for i in range(40):  # jaw, smile, then a head turn, each up and down
        c = np.zeros((1, enc.k, 512), np.float32)
        phase, a = divmod(i, 14)
        amp = np.sin(np.pi * a / 13)
        if phase < 2:
            c += 0.8 * amp * enc.response.directions[phase]
        else:
            c += (10 * amp / 30) * enc.response.matrix[SIGNAL_INDEX["yaw"]].reshape(1, enc.k, 512)
        video.write(cv2.cvtColor(to_uint8(net(torch.from_numpy(c)).numpy()), cv2.COLOR_RGB2BGR))
video.release()
import identity_cost
identity_cost.main(["--clips", {str(clip)!r}, "--json", {str(out)!r}])
print(json.dumps({{"ok": True}}))
""", timeout=600)
    r = json.loads(out.read_text())
    assert r["real"]["frames"] >= 15
    assert all(v >= 0 for v in r["real"]["per_unit"].values()) and r["real"]["floor"] >= 0
    assert max(r["real"]["per_unit"]["jaw"], r["real"]["per_unit"]["smile"], r["real"]["per_unit"]["yaw_per_deg"]) > 0
    assert r["avatar_mean"]["jaw"] > 0 and r["avatar_mean"]["pitch_per_deg"] > 0
