"""The GPU path's pieces. The image operations are device-agnostic torch and are checked here on the
CPU against OpenCV; the stream/pinned-memory parts run on CUDA only (skipped here, with the reason)."""

import cv2
import numpy as np
import pytest
import torch

from live.gpu import Downloader, StageStream, Uploader, resize_area, to_chw_float, to_image_uint8, warp_affine

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def test_uint8_round_trip():
    img = np.random.RandomState(0).randint(0, 256, (17, 23, 3), dtype=np.uint8)
    back = to_image_uint8(to_chw_float(torch.from_numpy(img)))
    assert np.array_equal(back.numpy(), img)


def test_warp_matches_opencv():
    rng = np.random.RandomState(1)
    img = cv2.GaussianBlur(rng.randint(0, 256, (120, 160, 3), dtype=np.uint8), (0, 0), 3)
    matrix = cv2.getRotationMatrix2D((80, 60), 20, 0.7)
    matrix[:, 2] += (-20, 5)
    ref = cv2.warpAffine(img, matrix, (96, 96), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = to_image_uint8(warp_affine(to_chw_float(torch.from_numpy(img)), matrix, 96)).numpy()
    diff = np.abs(out.astype(int) - ref.astype(int))[8:-8, 8:-8]  # borders: reflection conventions differ
    assert diff.mean() < 1.0 and diff.max() <= 6


def test_resize_matches_opencv_area():
    img = cv2.GaussianBlur(np.random.RandomState(2).randint(0, 256, (128, 128, 3), dtype=np.uint8), (0, 0), 2)
    ref = cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA)
    out = to_image_uint8(resize_area(to_chw_float(torch.from_numpy(img)), (32, 32))).numpy()
    assert np.abs(out.astype(int) - ref.astype(int)).mean() < 2.0


def test_cpu_degrades_to_plain_calls():
    s = StageStream("cpu")
    out, event = s.run(lambda a: a + 1, 1)
    assert out == 2 and event is None and s.stream is None
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = Uploader("cpu")(arr)
    assert np.array_equal(Downloader()(t), arr)


@CUDA
def test_cuda_streams_events_and_pinned_copies():
    s = StageStream("cuda")
    up, down = Uploader("cuda"), Downloader()
    arr = np.random.RandomState(3).rand(64, 64, 3).astype(np.float32)
    x, e1 = s.run(up, arr)
    other = StageStream("cuda")
    y, e2 = other.run(lambda t: t * 2, x, wait_for=e1)
    assert np.allclose(down(y, e2), arr * 2)


def test_roll_on_the_device_matches_the_host_reference():
    """The image step the GPU path runs (torch) against the CPU's (OpenCV), here on CPU tensors."""
    from live.image_steps import roll_device, roll_host

    img = cv2.GaussianBlur(np.random.RandomState(4).randint(0, 256, (256, 256, 3), dtype=np.uint8), (0, 0), 3)
    for degrees in (-12.0, 3.0, 20.0):
        ref = roll_host(img, degrees)
        out = roll_device(torch.from_numpy(img), degrees).numpy()
        diff = np.abs(out.astype(int) - ref.astype(int))[16:-16, 16:-16]  # borders: reflection conventions differ
        assert diff.mean() < 0.5 and diff.max() <= 3, degrees
    assert roll_device(torch.from_numpy(img), 0.01).numpy() is not None
    assert np.array_equal(roll_device(torch.from_numpy(img), 0.01).numpy(), img)  # under MIN_ROLL_DEG: untouched


def device_path_outputs(host_outputs: bool, device: str = "cpu") -> list:
    """The real synthesis network (seed 0, 256², K of the committed encoder) through a Pipeline: frames with
    offsets and rolls -> synthesis -> a sink that keeps what it is handed. host_outputs=False: the backend leaves
    its output as tensors, so the frames carry them through the image steps to the sink (the GPU path)."""
    from live.assets import AssetStore
    from live.backends.base import TensorSpec
    from live.backends.torch_backend import TorchBackend
    from live.encoder import load_encoder
    from live.frames import Frame
    from live.models.generator import load_mobilestylegan
    from live.pipeline import Pipeline
    from live.render import SynthesisNet, seed_identity
    from live.stages.capture import FrameList
    from live.stages.synthesis import SynthesisStage

    gen = load_mobilestylegan(AssetStore(progress=False))
    k = load_encoder().k
    net = SynthesisNet(gen, seed_identity(gen, 0), k, 256)
    backend = TorchBackend(net, {"offset": TensorSpec((1, k, 512))}, {"image": TensorSpec((1, 3, 256, 256))},
                           device=device, host_outputs=host_outputs)
    rng = np.random.RandomState(5)
    frames = [Frame(seq=i, t_capture_ns=i, t_media_s=i / 25, image=np.zeros((8, 8, 3), np.uint8),
                    offset=rng.normal(0, 0.3, (1, k, 512)).astype(np.float32), avatar_roll=(0.0, 8.0, -15.0)[i % 3])
              for i in range(6)]
    passing, got = [], []

    class Keep:
        def __init__(self, name, into):
            self.name, self.into = name, into

        def start(self):
            pass

        def process(self, frame):
            self.into.append((type(frame.output), frame.output, frame.ready))
            return frame

        def close(self):
            pass

    Pipeline(FrameList(frames), [SynthesisStage(backend, warmup_runs=0, device=device), Keep("image step", passing),
                                 Keep("sink", got)], lossless=True).run()
    assert all(t is (np.ndarray if host_outputs else torch.Tensor) for t, _, _ in passing)  # between the stages
    return got


def test_the_device_path_carries_tensors_to_the_sink_and_downloads_once():
    """With the backend's output left as tensors the sink is still handed host images (downloaded once, before
    it), the same as the host path's where nothing is rolled and within the roll's tolerance where it is."""
    host, device = device_path_outputs(True), device_path_outputs(False)
    assert len(host) == len(device) == 6
    for i, ((t_h, a, _), (t_d, b, ready)) in enumerate(zip(host, device, strict=True)):
        assert t_h is t_d is np.ndarray and ready is None and a.shape == b.shape == (256, 256, 3)
        diff = np.abs(a.astype(int) - b.astype(int))
        if i % 3 == 0:
            assert np.array_equal(a, b)  # no roll: the same uint8 conversion
        else:
            assert diff[16:-16, 16:-16].mean() < 0.5, i


@CUDA
def test_cuda_path_matches_the_cpu_reference():
    """On a GPU: the synthesis stage's stream, the event on the frame, the image steps on the device and one
    download at the sink give the CPU path's images (within the generator's float differences)."""
    cpu, cuda = device_path_outputs(True), device_path_outputs(False, device="cuda")
    for (_, a, _), (t, b, ready) in zip(cpu, cuda, strict=True):
        assert t is np.ndarray and ready is None  # downloaded, the event spent
        assert np.abs(a.astype(int) - b.astype(int))[16:-16, 16:-16].mean() < 1.5


@CUDA
def test_roll_on_cuda_matches_the_host_reference():
    from live.image_steps import roll_device, roll_host

    img = cv2.GaussianBlur(np.random.RandomState(6).randint(0, 256, (256, 256, 3), dtype=np.uint8), (0, 0), 3)
    out = roll_device(torch.from_numpy(img).cuda(), 12.0).cpu().numpy()
    assert np.abs(out.astype(int) - roll_host(img, 12.0).astype(int))[16:-16, 16:-16].mean() < 0.5
