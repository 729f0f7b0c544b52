"""live.train.dlib_net: the torch port gives dlib's own descriptors, and its chips are dlib's chips."""

import numpy as np
import pytest
import torch

dlib = pytest.importorskip("dlib", reason="pip install 'live[quality]'")


@pytest.fixture(scope="module")
def parts():
    from skimage import data

    from live.assets import AssetStore
    from live.train.dlib_net import DlibDescriptor

    store = AssetStore(progress=False)
    path = store.resolve("dlib_face_descriptor")
    img = data.astronaut()
    shape = dlib.shape_predictor(str(store.resolve("dlib_shape_predictor_68")))(
        img, dlib.get_frontal_face_detector()(img, 1)[0])
    return DlibDescriptor(path).requires_grad_(False), dlib.face_recognition_model_v1(str(path)), img, shape


def test_descriptor_equals_dlibs_own(parts):
    net, reference, img, shape = parts
    chip = dlib.get_face_chip(img, shape, 150, 0.25)
    ours = net(torch.from_numpy(chip).permute(2, 0, 1)[None].float())[0].numpy()
    theirs = np.asarray(reference.compute_face_descriptor(img, shape))
    assert np.abs(ours - theirs).max() < 1e-4
    other = net(torch.from_numpy(np.ascontiguousarray(chip[:, ::-1])).permute(2, 0, 1)[None].float())[0].numpy()
    assert np.linalg.norm(other - theirs) > 0.01  # a different input gives a different descriptor


def test_chips_follow_dlibs_face_chip_details_and_carry_gradients(parts):
    from live.train.dlib_net import chip_grid, face_chips

    net, reference, img, shape = parts
    d = dlib.get_face_chip_details(shape, 150, 0.25)
    grid = chip_grid((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), d.angle, *img.shape[:2])
    image = (torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1).requires_grad_(True)
    chips = face_chips(image, [grid])
    assert np.abs(chips[0].permute(1, 2, 0).detach().numpy() - dlib.get_face_chip(img, shape, 150, 0.25)).mean() < 1.0
    theirs = torch.from_numpy(np.asarray(reference.compute_face_descriptor(img, shape), np.float32))
    dist = (net(chips)[0] - theirs).norm()
    assert dist < 0.02  # the astronaut's face is near the chip's scale: bilinear sampling is what dlib does
    (net(chips)[0] - theirs - 0.1).norm().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
