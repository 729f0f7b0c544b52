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
