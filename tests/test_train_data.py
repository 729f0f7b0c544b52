"""The encoder's training data script: deterministic samples, a real shard, resumable."""

import numpy as np
import torch

from conftest import run_py
from live.assets import AssetStore
from live.models.generator import load_mobilestylegan
from live.train.data import sample_styles


def test_samples_are_deterministic_and_local_ones_keep_the_identity():
    gen = load_mobilestylegan(AssetStore(progress=False))
    with torch.inference_mode():
        kinds = [sample_styles(gen, i, 8)[0] for i in range(40)]
        assert 0 in kinds and 1 in kinds
        i = kinds.index(1)
        kind, ident, a = sample_styles(gen, i, 8)
        _, _, b = sample_styles(gen, i, 8)
        assert torch.equal(a, b) and ident >= 50_000
        assert torch.equal(a[0, 8:], a[0, -1:].expand(15, -1))  # layers >= K are the identity's
        assert not torch.equal(a[0, 0], a[0, -1])  # the first K moved


def test_script_writes_a_shard_and_resumes(tmp_path):
    out = tmp_path / "data"
    code = f"""
import json, sys
from live.train.data import main
main(["--out", {str(out)!r}, "--samples", "6", "--shard", "3"])
print(json.dumps({{"ok": True}}))
"""
    run_py(code, timeout=300)
    shards = sorted(out.glob("shard-*.npz"))
    assert [p.name for p in shards] == ["shard-000000.npz", "shard-000001.npz"]
    d = np.load(shards[1])
    assert list(d["index"]) == [3, 4, 5] and d["styles"].shape == (3, 8, 512)
    assert d["blendshapes"].shape == (3, 52) and d["face"].mean() >= 2 / 3
    mtime = shards[0].stat().st_mtime_ns
    run_py(code, timeout=300)  # resumes: nothing rewritten
    assert shards[0].stat().st_mtime_ns == mtime
    assert (out / "dataset.json").exists()
