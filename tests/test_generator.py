"""The default generator: imported torch MobileStyleGAN vs OpenVINO on the same IR, W+ behaviour, caching."""

import numpy as np
import pytest
import torch

from live.assets import AssetStore
from live.models.generator import IR_ASSETS, broadcast_styles, load_mobilestylegan, z_from_seed
from live.models.ir_import import IRFormatError, IRGraph, import_ir


@pytest.fixture(scope="module")
def store():
    return AssetStore(progress=False)


@pytest.fixture(scope="module")
def gen(store):
    return load_mobilestylegan(store)


@pytest.fixture(scope="module")
def openvino_nets(store):
    ov = pytest.importorskip("openvino", reason="OpenVINO is the reference: pip install 'live[openvino]'")
    core = ov.Core()
    p = {n: str(store.resolve(n)) for n in IR_ASSETS}
    cfg = {"INFERENCE_PRECISION_HINT": "f32"}  # this CPU would otherwise run bf16
    mapping = core.compile_model(core.read_model(p[IR_ASSETS[0]], p[IR_ASSETS[1]]), "CPU", cfg)
    synthesis = core.compile_model(core.read_model(p[IR_ASSETS[2]], p[IR_ASSETS[3]]), "CPU", cfg)
    return mapping, synthesis


def test_torch_import_matches_openvino_on_five_seeds(gen, openvino_nets):
    mapping, synthesis = openvino_nets
    for seed in range(5):
        z = z_from_seed(seed)
        w_ref = mapping(z.numpy())[0]
        img_ref = synthesis(w_ref)[0]
        with torch.inference_mode():
            w = gen.mapping_net(z)
            img = gen.synthesis(broadcast_styles(torch.from_numpy(w_ref), gen.num_layers)).numpy()
        assert np.abs(w.numpy() - w_ref).max() <= 1e-4
        assert img.shape == (1, 3, 1024, 1024)
        assert np.abs(img - img_ref).max() <= 1e-3, f"seed {seed}"


def test_w_plus_identical_layers_reproduce_single_w_and_each_layer_matters(gen):
    with torch.inference_mode():
        w = gen.mapping(z_from_seed(1), truncation=0.7)
        styles = broadcast_styles(w, gen.num_layers)
        base = gen.synthesis(styles)
        assert torch.equal(gen.synthesis(styles.clone()), base)  # deterministic
        other = gen.mapping(z_from_seed(2), truncation=0.7)
        for k in (0, 5, 22):
            changed = styles.clone()
            changed[:, k] = other
            out = gen.synthesis(changed)
            assert (out - base).abs().mean() > 1e-3, f"changing style layer {k} changed nothing"


def test_truncation_zero_gives_the_average_face(gen):
    with torch.inference_mode():
        a = gen.mapping(z_from_seed(3), truncation=0.0)
        b = gen.mapping(z_from_seed(4), truncation=0.0)
    assert torch.allclose(a, b) and torch.allclose(a[0], gen.w_avg)


def test_cache_is_reused(store, gen):
    cached = list(store.cache_dir.glob("mobilestylegan-torch-*.safetensors"))
    assert len(cached) == 1
    again = load_mobilestylegan(store)
    for (k, a), (_, b) in zip(gen.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_truncated_ir_is_refused_with_a_clear_error(store, tmp_path):
    xml, binf = store.resolve(IR_ASSETS[2]), store.resolve(IR_ASSETS[3])
    short = tmp_path / "short.bin"
    short.write_bytes(binf.read_bytes()[: 1_000_000])
    with pytest.raises(IRFormatError, match="beyond the end of the .bin"):
        import_ir((store.resolve(IR_ASSETS[0]), store.resolve(IR_ASSETS[1])), (xml, short))
    bad = tmp_path / "bad.xml"
    bad.write_text("<net><layers>")
    with pytest.raises(IRFormatError, match="not valid IR xml"):
        IRGraph(bad, binf)


def test_wrong_hash_ir_is_refused_by_the_asset_store(store, tmp_path):
    from live.assets import AssetError

    real = store.resolve(IR_ASSETS[3])
    fake = tmp_path / "SynthesisNetwork.bin"
    fake.write_bytes(real.read_bytes()[:-4] + b"\0\0\0\1")  # right size, one weight changed
    paths = {n: store.resolve(n) for n in IR_ASSETS[:3]} | {IR_ASSETS[3]: fake}
    s = AssetStore(cache_dir=tmp_path / "cache", offline=True, paths=paths, progress=False)
    with pytest.raises(AssetError, match="sha256 mismatch"):
        load_mobilestylegan(s)


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        z_from_seed(-1)
