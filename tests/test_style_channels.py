"""StyleSpace channels as W+ offsets, their locality, and the calibrated encoder's blink channel."""

import json

import numpy as np
import pytest
import torch

from live.train.style_channels import channel_offset, channel_std, locality, rank


@pytest.fixture(scope="module")
def gen():
    from live.assets import AssetStore
    from live.models.generator import load_mobilestylegan

    return load_mobilestylegan(AssetStore(progress=False)).requires_grad_(False)


@torch.no_grad()
def test_offset_moves_one_channel_and_nothing_else(gen):
    s = gen.synthesis_net
    w = gen.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(0)), 0.7)
    for layer, channel in ((9, 77), (2, 5), (0, 300)):  # a 512-channel, a 128-channel and the first layer
        off = channel_offset(gen, layer, channel, 0.5, k=10)
        assert off.shape == (10, 512) and torch.count_nonzero(off.abs().sum(1)) == 1
        moved = s.modulation(layer, w + off[layer:layer + 1]) - s.modulation(layer, w)
        assert moved[0, channel].item() == pytest.approx(0.5, abs=1e-3)
        others = torch.cat([moved[0, :channel], moved[0, channel + 1:]])
        assert others.abs().max().item() < 1e-3


def test_offset_outside_the_layers_or_channels_is_refused(gen):
    with pytest.raises(ValueError, match="outside the 8 layers"):
        channel_offset(gen, 9, 77, 1.0, k=8)
    with pytest.raises(ValueError, match="has 128 channels"):
        channel_offset(gen, 2, 200, 1.0, k=8)


def test_locality_finds_the_blink_channel_among_the_eye_channels(gen):
    """On a calibration face, with few projections: the blink channel acts mostly inside the eyes, and
    ranks among the most local eye channels of the first 10 layers."""
    from live.assets import AssetStore
    from live.landmarker import FaceTracker
    from live.models.early_exit import load_heads

    store = AssetStore(progress=False)
    std = channel_std(gen, 10)
    tracker = FaceTracker(store.resolve("face_landmarker"), num_faces=1, video=False)
    try:
        energy = locality(gen, load_heads(), tracker, 50_232, std, projections=8)
    finally:
        tracker.close()
    assert set(energy) == {"lips", "eyes", "rest"} and [len(e) for e in energy["eyes"]] == [len(s) for s in std]
    top = rank([energy], "eyes", 30)
    assert (9, 77) in [(layer, c) for layer, c, _, _ in top], top[:5]
    assert all(0.0 <= share <= 1.0 for _, _, share, _ in top)


@torch.no_grad()
def test_calibrated_blink_is_the_channel_its_metadata_names(gen):
    from live.encoder import Encoder
    from live.models.encoder import CALIBRATED_PATH
    from live.train.calibrate_encoder import STYLE_CHANNELS

    enc = Encoder.load(CALIBRATED_PATH)
    meta = json.loads(CALIBRATED_PATH.with_suffix(".json").read_text())
    for name, (layer, channel, stds) in STYLE_CHANNELS.items():
        assert meta["style_channels"][name] == {"layer": layer, "channel": channel, "stds": stds}
        spread = channel_std(gen, layer + 1)[layer][channel]
        expected = channel_offset(gen, layer, channel, stds * float(spread), enc.k).numpy()
        assert np.allclose(enc.response.directions[enc.names.index(name)], expected, atol=1e-5)
