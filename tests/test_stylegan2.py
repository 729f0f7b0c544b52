"""StyleGAN2 on small random-initialised configurations (no real weights can be had here)."""

import numpy as np
import pytest
import torch

from live.models.generator import z_from_seed
from live.models.stylegan2 import StyleGAN2


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    g = StyleGAN2(size=32, style_dim=64, n_mlp=2, channel_multiplier=1, max_channels=32).eval()
    for name, buf in g.named_buffers():
        if name.startswith("noises."):
            buf.normal_()
    for conv in list(g.convs) + [g.conv1]:
        conv.noise.weight.data.fill_(0.1)
    g.update_w_avg(samples=256)
    return g


def test_shapes_and_layers(tiny):
    assert tiny.num_layers == 8  # 2*log2(32) - 2
    w = tiny.mapping(z_from_seed(0, dim=64))
    styles = w[:, None].expand(1, tiny.num_layers, 64).contiguous()
    img = tiny.synthesis(styles)
    assert w.shape == (1, 64) and img.shape == (1, 3, 32, 32) and torch.isfinite(img).all()
    with pytest.raises(ValueError, match=r"styles must be \[N,8,64\]"):
        tiny.synthesis(styles[:, :7])


def test_deterministic_and_w_plus(tiny):
    w1 = tiny.mapping(z_from_seed(1, dim=64))
    w2 = tiny.mapping(z_from_seed(2, dim=64))
    styles = w1[:, None].expand(1, tiny.num_layers, 64).contiguous()
    with torch.inference_mode():
        a, b = tiny.synthesis(styles), tiny.synthesis(styles.clone())
        assert torch.equal(a, b)
        for k in (0, 4, 7):
            changed = styles.clone()
            changed[:, k] = w2
            assert (tiny.synthesis(changed) - a).abs().max() > 1e-6, k


def test_truncation(tiny):
    z = z_from_seed(3, dim=64)
    assert torch.allclose(tiny.mapping(z, 0.0)[0], tiny.w_avg)


def test_state_dict_round_trip_through_safetensors(tiny, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "g_ema.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.state_dict().items()}, str(path))
    again = StyleGAN2.from_file(path)
    styles = tiny.mapping(z_from_seed(4, dim=64))[:, None].expand(1, 8, 64).contiguous()
    with torch.inference_mode():
        assert torch.equal(again.synthesis(styles), tiny.synthesis(styles))
    pt = tmp_path / "g_ema.pt"
    torch.save({"g_ema": tiny.state_dict()}, pt)  # the official layout: a dict with g_ema
    assert StyleGAN2.from_file(pt).resolution == 32


def test_bad_checkpoints(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        StyleGAN2.from_file(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"weight": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="not a StyleGAN2 g_ema"):
        StyleGAN2.from_file(bad)


def test_onnx_export_parity(tiny, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="pip install 'live[onnx]'")

    class Synth(torch.nn.Module):
        def __init__(self, g):
            super().__init__()
            self.g = g

        def forward(self, styles):
            return self.g.synthesis(styles)

    styles = tiny.mapping(z_from_seed(5, dim=64))[:, None].expand(1, 8, 64).contiguous()
    path = tmp_path / "sg2.onnx"
    with torch.no_grad():
        torch.onnx.export(Synth(tiny), (styles,), str(path), input_names=["styles"], output_names=["image"],
                          dynamo=False, opset_version=17)
        ref = tiny.synthesis(styles).numpy()
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"styles": styles.numpy()})[0]
    assert np.abs(out - ref).max() <= 1e-4


@pytest.mark.parametrize("upsample", [False, True])
def test_activation_modulation_equals_weight_modulation(upsample):
    """The exportable path (modulate inputs, demodulate outputs) equals StyleGAN2's per-sample weights."""
    import torch.nn.functional as F

    from live.models.stylegan2 import ModulatedConv2d, upfirdn2d

    torch.manual_seed(1)
    conv = ModulatedConv2d(8, 6, 3, 16, upsample=upsample)
    x, style = torch.randn(2, 8, 9, 9), torch.randn(2, 16)
    s = conv.modulation(style).view(2, 1, 8, 1, 1)
    w = conv.scale * conv.weight * s
    w = w * torch.rsqrt(w.pow(2).sum([2, 3, 4]) + 1e-8).view(2, 6, 1, 1, 1)
    refs = []
    for i in range(2):
        if upsample:
            out = F.conv_transpose2d(x[i:i + 1], w[i].transpose(0, 1), stride=2)
            refs.append(upfirdn2d(out, conv.blur.kernel, pad=(1, 1)))
        else:
            refs.append(F.conv2d(x[i:i + 1], w[i], padding=1))
    assert torch.allclose(conv(x, style), torch.cat(refs), atol=1e-5)
