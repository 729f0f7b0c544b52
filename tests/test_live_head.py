"""The learned live heads: the 256² one starts as the closed-form head, the 512² one as the generator's last block;
they load only for their generator, are what live renders by default, and draw a generated face nearer the full
network's picture than the closed-form head does."""

import json

import pytest
import torch
import torch.nn.functional as F

from live.assets import AssetStore
from live.models.early_exit import load_heads
from live.models.generator import load_mobilestylegan
from live.models.live_head import (
    HEADS_PATH,
    META_PATH,
    LastBlockHead,
    LiveHead,
    load_live_heads,
)
from live.models.mobilestylegan import bands_to_image
from live.render import SynthesisNet


@pytest.fixture(scope="module")
def gen():
    return load_mobilestylegan(AssetStore(progress=False))


@pytest.fixture(scope="module")
def lpips():
    from live.models.lpips import load_lpips

    return load_lpips(AssetStore(progress=False))


def test_a_new_head_is_the_closed_form_one():
    weight, bias = load_heads()[256]
    head = LiveHead.from_linear(weight, bias, 8)
    x = torch.randn(2, 256, 16, 16)
    with torch.no_grad():
        assert torch.allclose(head(x), F.conv2d(x, weight) + bias, atol=1e-5)


def test_the_512_head_starts_as_the_last_block_at_that_style(gen):
    from live.render import seed_identity

    styles = seed_identity(gen, 40)  # one face: its mean style is its own, so the whole-width head is exact
    s = gen.synthesis_net
    with torch.inference_mode():
        truth = F.avg_pool2d(gen.synthesis(styles), 2)
        feats = s.render(s.modulations(styles), 1, features_of=5)
        whole, narrow = (LastBlockHead.from_block(s, styles, w).image(feats) for w in (64, 16))
    assert float((whole - truth).abs().max()) < 1e-3
    assert float((narrow - truth).abs().mean()) > 0.01  # narrowed, it is a start that training mends


def test_the_512_head_draws_a_crop_as_it_draws_the_whole():
    torch.manual_seed(0)
    head = LastBlockHead(8, 4, 32)
    with torch.no_grad():
        for p in head.parameters():
            p.normal_()
        head.noise1.normal_()
        head.noise2.normal_()
        x = torch.randn(1, 8, 16, 16)
        whole = head.image(x)
        part = head.image(x[..., 3:13, 5:15], at=(3, 5))  # 10x10 features -> 20x20 pixels from (6, 10)
    # 2 pixels in from the crop's edges (where the crop's zero padding reaches) they agree
    assert torch.allclose(part[..., 2:-2, 2:-2], whole[..., 8:24, 12:28], atol=1e-5)
    assert not torch.allclose(head.image(x[..., 3:13, 5:15]), part)  # the noise is read where the crop sits


def test_committed_heads_match_the_generator_and_their_record(gen):
    meta = json.loads(META_PATH.read_text())
    assert meta["generator_sha256"] == gen.source_sha256
    heads = load_live_heads(gen.source_sha256)
    assert set(heads) == {256, 512} and HEADS_PATH.stat().st_size < 2_000_000
    assert isinstance(heads[256], LiveHead) and isinstance(heads[512], LastBlockHead)
    for size, record in meta["heads"].items():
        assert record["eval"]["learned"]["lpips"]["mean"] < record["eval"]["linear"]["lpips"]["mean"], size
    with pytest.raises(ValueError, match="live.train.live_heads"):
        load_live_heads("0" * 64)


def test_synthesis_uses_the_learned_head_unless_asked_or_tuned(gen):
    styles = torch.zeros(1, gen.num_layers, 512)
    learned, linear = SynthesisNet(gen, styles, 0, 256), SynthesisNet(gen, styles, 0, 256, learned_head=False)
    assert learned.learned and learned.head_tag.startswith("-live")
    assert not linear.learned and linear.head_tag.startswith("-exit")
    from live.tuning import Tuning

    tuned = SynthesisNet(gen, styles, 0, 256, tuning=Tuning({"img_bias": torch.zeros(1, 12, 1, 1).half()}, "linear"))
    assert tuned.tuned and not tuned.learned  # a tuning renders with the head it was made with


@pytest.mark.parametrize("size", [256, 512])
def test_learned_head_is_nearer_the_full_picture(gen, lpips, size):
    from live.models.encoder import LinearEncoder
    from live.train.live_heads import live_styles

    styles = live_styles(gen, LinearEncoder.load(generator_sha256=gen.source_sha256), 40)  # held out, an offset on
    with torch.inference_mode():
        truth = F.avg_pool2d(gen.synthesis(styles), 1024 // size).clamp(-1, 1)
        s = gen.synthesis_net
        feats = s.render(s.modulations(styles), 1, features_of=4 if size == 256 else 5)
        weight, bias = load_heads()[size]
        linear = bands_to_image(F.conv2d(feats, weight) + bias).clamp(-1, 1)
        learned = SynthesisNet(gen, styles, 0, size)(torch.zeros(1, 0, 512)).clamp(-1, 1)
        near, far = float(lpips(learned, truth)), float(lpips(linear, truth))
    assert near < far - 0.02, (near, far)
    if size == 512:  # the narrowed last block: 0.076 here (0.334 closed-form); the head from block 5 it replaced, 0.2
        assert near < 0.12, near


def test_auto_head_keeps_the_closed_form_one_for_untuned_portraits():
    import numpy as np

    from live.avatar import Avatar
    from live.config import Config
    from live.stages import learned_head

    cfg = Config()
    crop = np.zeros((4, 4, 3), np.uint8)
    generated, enrolled = Avatar(None, None, None, None, None, None), Avatar(None, None, None, crop, None, None)
    tuned = Avatar(None, None, object(), crop, None, None)
    assert learned_head(cfg, generated) and learned_head(cfg, tuned) and not learned_head(cfg, enrolled)
    cfg.synthesis.head = "linear"
    assert not learned_head(cfg, generated)
    cfg.synthesis.head = "learned"
    assert learned_head(cfg, enrolled)
