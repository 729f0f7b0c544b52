"""The committed early-exit heads: they load, match the generator, and are close to the full output."""

import json

import pytest
import torch
import torch.nn.functional as F

from live.assets import AssetStore
from live.models.early_exit import EXIT_BLOCK, HEADS_PATH, META_PATH, load_heads, psnr, sample_styles
from live.models.generator import load_mobilestylegan
from live.render import SynthesisNet


@pytest.fixture(scope="module")
def gen():
    return load_mobilestylegan(AssetStore(progress=False))


def test_metadata_matches_the_generator(gen):
    meta = json.loads(META_PATH.read_text())
    assert meta["generator_sha256"] == gen.source_sha256
    assert meta["samples"] >= 16 and set(meta["metrics"]) == {"256", "512"}
    heads = load_heads()
    assert heads[256][0].shape == (12, 256, 1, 1) and heads[512][0].shape == (12, 128, 1, 1)
    assert HEADS_PATH.stat().st_size < 1_000_000


@pytest.mark.parametrize("size", [256, 512])
def test_head_is_close_to_the_downsampled_full_output(gen, size):
    styles = sample_styles(gen, 9)  # not a training seed
    with torch.inference_mode():
        full = gen.synthesis(styles)
        ref = F.avg_pool2d(full, 1024 // size)
        fast = SynthesisNet(gen, styles, 0, size, early_exit=True, learned_head=False)
        assert fast.early_exit
        out = fast(torch.zeros(1, 0, 512))
    assert out.shape == ref.shape
    assert psnr(out, ref) > 20.0
    # ...and clearly better than a head that ignores the features (the mean colour):
    assert psnr(out, ref) > psnr(ref.mean(dim=(2, 3), keepdim=True).expand_as(ref), ref) + 5


def test_exit_blocks_are_the_expected_ones():
    assert EXIT_BLOCK == {256: 4, 512: 5}


def test_build_engines_exports_and_validates(tmp_path):
    pytest.importorskip("onnxruntime", reason="pip install 'live[onnx]'")
    import build_engines

    assert build_engines.main(["--seed", "1", "--size", "256", "--k", "4", "--head", "linear", "--out",
                               str(tmp_path)]) == 0
    files = list(tmp_path.glob("synthesis-*-k4-s256-exit*.onnx"))
    assert len(files) == 1 and files[0].stat().st_size > 1_000_000
