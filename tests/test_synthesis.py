"""Fixed-identity synthesis, backends against torch, the synthesis stage, `live generate`."""

import cv2
import numpy as np
import pytest
import torch

from conftest import run_live
from live.assets import AssetStore
from live.backends.base import BackendError, TensorSpec
from live.backends.fake import FakeBackend
from live.frames import Frame
from live.models.generator import load_mobilestylegan
from live.models.specialize import FixedIdentitySynthesis
from live.stages.synthesis import SynthesisStage
from live.render import SynthesisNet, make_backend, seed_identity


@pytest.fixture(scope="module")
def gen():
    return load_mobilestylegan(AssetStore(progress=False))


@pytest.fixture(scope="module")
def identity(gen):
    return seed_identity(gen, 11)


def test_zero_offset_reproduces_the_identity(gen, identity):
    with torch.inference_mode():
        full = gen.synthesis(identity)
        for k in (0, 8):
            fixed = FixedIdentitySynthesis(gen.synthesis_net, identity, k)
            assert (fixed(torch.zeros(1, k, 512)) - full).abs().max() <= 1e-4, k


def test_offset_matches_full_synthesis_on_the_first_k_layers(gen, identity):
    k = 8
    offset = torch.from_numpy(np.random.RandomState(0).randn(1, k, 512).astype(np.float32)) * 0.5
    with torch.inference_mode():
        styles = identity.clone()
        styles[:, :k] += offset
        ref = gen.synthesis(styles)
        out = FixedIdentitySynthesis(gen.synthesis_net, identity, k)(offset)
        assert (out - ref).abs().max() <= 1e-4
        assert (out - gen.synthesis(identity)).abs().mean() > 1e-3  # the offset did something


def test_bad_shapes_are_refused(gen, identity):
    with pytest.raises(ValueError, match="K"):
        FixedIdentitySynthesis(gen.synthesis_net, identity, 24)
    fixed = FixedIdentitySynthesis(gen.synthesis_net, identity, 4)
    with pytest.raises(ValueError, match=r"offset must be \[N,4,512\]"):
        fixed(torch.zeros(1, 5, 512))
    with pytest.raises(ValueError, match="size"):
        SynthesisNet(gen, identity, 4, size=300)


@pytest.mark.parametrize("kind", ["onnxruntime", "openvino"])
def test_onnx_backends_match_torch(gen, identity, kind, tmp_path):
    pytest.importorskip(kind, reason=f"{kind} not installed: pip install 'live[onnx,openvino]'")
    net = SynthesisNet(gen, identity, 8, 256)
    offset = (np.random.RandomState(1).randn(1, 8, 512) * 0.3).astype(np.float32)
    with torch.inference_mode():
        ref = net(torch.from_numpy(offset)).numpy()
    backend = make_backend(kind, net, gen, identity, engines_dir=tmp_path)
    out = backend.run({"offset": offset})["image"]
    assert out.shape == (1, 3, 256, 256)
    assert np.abs(out - ref).max() <= 1e-3
    onnx = list(tmp_path.glob("*.onnx"))
    assert len(onnx) == 1 and "-k8-s256-" in onnx[0].name  # named by what it depends on


def test_tensorrt_says_why_it_is_unavailable(gen, identity, tmp_path):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here: exercised by build_engines.py on a CUDA machine")
    except ImportError:
        pass
    net = SynthesisNet(gen, identity, 2, 256)
    with pytest.raises(BackendError, match="pip install tensorrt"):
        make_backend("tensorrt", net, gen, identity, engines_dir=tmp_path)


def test_stage_renders_with_any_backend():
    fake = FakeBackend({"offset": TensorSpec((1, 8, 512))}, {"image": TensorSpec((1, 3, 64, 64))}, value=1.0)
    stage = SynthesisStage(fake, warmup_runs=1)
    stage.start()
    frame = Frame(seq=0, t_capture_ns=0, t_media_s=0.0, image=np.zeros((8, 8, 3), np.uint8))
    out = stage.process(frame)
    assert out.output.shape == (64, 64, 3) and out.output.dtype == np.uint8 and out.output.min() == 255
    assert fake.calls == 2 and stage.name == "synthesis/fake"
    with pytest.raises(ValueError, match="offset has shape"):
        stage.process(frame.replace(offset=np.zeros((1, 3, 512), np.float32)))


def test_generate_writes_a_face(tmp_path, landmarker_path):
    out = tmp_path / "face.png"
    r = run_live("generate", "--seed", "0", "--size", "256", "-o", str(out))
    assert r.returncode == 0, r.stderr
    img = cv2.imread(str(out))
    assert img.shape == (256, 256, 3) and img.std() > 20
    r = run_live("generate", "--seed", "0", "--layers-from", "nonsense", "-o", str(out))
    assert r.returncode == 2 and "SEED2:K" in r.stderr


def test_generated_face_is_a_face(tmp_path, landmarker_path):
    """MediaPipe finds a face in the generated image (subprocess: see conftest.run_py)."""
    from conftest import run_py

    out = tmp_path / "face.png"
    assert run_live("generate", "--seed", "3", "--size", "512", "-o", str(out)).returncode == 0
    r = run_py(f"""
import json, cv2
from live.landmarker import FaceTracker
t = FaceTracker({str(landmarker_path)!r})
faces = t.detect(cv2.cvtColor(cv2.imread({str(out)!r}), cv2.COLOR_BGR2RGB), 0.0)
t.close()
print(json.dumps({{"faces": len(faces)}}))
""")
    assert r["faces"] == 1


def test_pipeline_with_a_fake_synthesis_backend(clip):
    from live.pipeline import Pipeline
    from live.stages.capture import open_capture
    from live.stages.file import NullSink

    fake = FakeBackend({"offset": TensorSpec((1, 8, 512))}, {"image": TensorSpec((1, 3, 32, 32))}, value=-1.0)
    outputs = []
    p = Pipeline(open_capture(str(clip)), [SynthesisStage(fake, warmup_runs=0), NullSink()], lossless=True,
                 on_frame=lambda f: outputs.append(f.output))
    result = p.run()
    assert result.frames == 30 and fake.calls == 30
    assert all(o.shape == (32, 32, 3) and o.max() == 0 for o in outputs)
    assert "synthesis/fake" in result.summary["stages"]
