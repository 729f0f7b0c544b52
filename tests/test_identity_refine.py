"""live.train.surrogate and live.train.identity_refine on the real generator and dlib's descriptor in torch."""

import numpy as np
import pytest
import torch

pytest.importorskip("dlib", reason="pip install 'live[quality]'")


def test_surrogate_training_learns_a_readout_it_can_see():
    from live.train.surrogate import OUT, train

    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.uniform(0, 1, (320, len(OUT))).astype(np.float32))
    x = torch.zeros(320, 3, 128, 128)
    x[:, 0, 40:88, 40:88] = y[:, 0, None, None] * 2 - 1  # the first readout is a square's brightness
    _, report = train(x, y, epochs=6)
    assert report["corr"]["jawOpen"] > 0.9
    assert abs(report["corr"]["pitch"]) < 0.5  # the others are noise it cannot read


def test_refinement_lowers_the_descriptor_change_of_a_direction():
    from live.assets import AssetStore
    from live.encoder import load_encoder
    from live.train.generated_faces import GeneratedFaces
    from live.train.dlib_net import DlibDescriptor
    from live.train.identity_refine import Refiner
    from live.train.surrogate import Surrogate

    torch.manual_seed(0)
    enc = load_encoder()
    store = AssetStore(progress=False)
    faces = GeneratedFaces(store, enc.k)
    try:
        refiner = Refiner(faces, Surrogate().eval().requires_grad_(False),
                          DlibDescriptor(store.resolve("dlib_face_descriptor")), range(50_000, 50_004))
        start = torch.from_numpy(enc.response.directions[enc.names.index("jaw")])

        def change(d):
            with torch.no_grad():
                img = refiner.render(faces.styles(refiner.ws, d))
                return float((refiner.describe(img, refiner.grids(img)) - refiner.desc0).norm(dim=1).mean())

        refined, report = refiner.refine("jaw", start, "mouth", steps=8, lam=50.0, cross=0.0, outside=0.0)
    finally:
        faces.close()
    assert refined.shape == start.shape
    assert report["steps"] == 8 and 1.0 <= report["rescaled"] <= 2.0
    assert change(refined / report["rescaled"]) < 0.9 * change(start)
