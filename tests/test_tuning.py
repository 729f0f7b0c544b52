"""Pivotal tuning (live.tuning): the tuned network draws its target more closely, keeps what offsets do, and every
renderer of the identity applies it."""

import pytest
import torch
import torch.nn.functional as F

from live.assets import AssetStore
from live.encoder import load_encoder
from live.models.generator import load_mobilestylegan
from live.render import SynthesisNet, identity_key, seed_identity
from live.tuning import offset_bank, pivotal_tuning


@pytest.fixture(scope="module")
def setup():
    from live.models.lpips import load_lpips

    store = AssetStore(progress=False)
    gen = load_mobilestylegan(store)
    return gen, load_lpips(store), load_encoder()


def test_tuning_draws_the_target_closer_and_keeps_the_motion(setup):
    gen, lpips, encoder = setup
    styles = seed_identity(gen, 5)
    with torch.no_grad():  # the target: another face's picture (seed 6), which no latent change of seed 5 gives
        target = F.avg_pool2d(gen.synthesis(seed_identity(gen, 6)), 4).clamp(-1, 1)
    net = SynthesisNet(gen, styles, encoder.k, 256)
    zero = torch.zeros(1, encoder.k, 512)
    with torch.no_grad():
        before = net(zero)
    tuning = pivotal_tuning(net, target, lpips, encoder, steps=12)
    with torch.no_grad():
        assert torch.equal(net(zero), before)  # the net it tuned is left as it was
        tuned = SynthesisNet(gen, styles, encoder.k, 256, tuning=tuning)
        after = tuned(zero)
        gain = float(lpips(before, target)) - float(lpips(after, target))
        assert gain > 0.03, gain
        held_out = offset_bank(encoder, 4, seed=7)  # offsets the tuning never saw
        errors = [float(((tuned(o) - after) - (net(o) - before)).norm() / (net(o) - before).norm())
                  for o in held_out]
    assert max(errors) < 0.35, errors  # motion kept: far below the change the tuning made to the face
    assert float((after - before).norm() / before.norm()) > 0.05
    assert 0.2e6 < tuning.nbytes() < 2e6


def test_tuning_applies_to_the_256_view_and_names_its_engines(setup):
    gen, lpips, encoder = setup
    styles = seed_identity(gen, 5)
    with torch.no_grad():
        target = F.avg_pool2d(gen.synthesis(seed_identity(gen, 6)), 4).clamp(-1, 1)
    tuning = pivotal_tuning(SynthesisNet(gen, styles, encoder.k, 256), target, lpips, encoder, steps=2)
    zero = torch.zeros(1, encoder.k, 512)
    with torch.no_grad():
        plain, tuned = SynthesisNet(gen, styles, encoder.k, 256), SynthesisNet(gen, styles, encoder.k, 256,
                                                                             tuning=tuning)
        assert tuned.tuned and not torch.equal(plain(zero), tuned(zero))
        big = SynthesisNet(gen, styles, encoder.k, 512, tuning=tuning)  # made for the 256² view only
        assert not big.tuned and torch.equal(big(zero), SynthesisNet(gen, styles, encoder.k, 512)(zero))
        rest = torch.zeros(1, 0, 512)  # K = 0: the identity at rest, a cached constant picture
        assert not torch.equal(SynthesisNet(gen, styles, 0, 256)(rest), SynthesisNet(gen, styles, 0, 256,
                                                                                     tuning=tuning)(rest))
    assert identity_key(styles, tuning) != identity_key(styles)  # engines and avatar fits are made again


def test_the_identity_term_brings_the_face_closer_to_the_portraits_descriptor(setup):
    pytest.importorskip("dlib", reason="pip install 'live[quality]'")
    from live.metrics.face_distance import IdentityMetric
    from live.train.dlib_net import DlibDescriptor
    from live.tuning import IdentityTerm

    gen, lpips, encoder = setup
    store = AssetStore(progress=False)
    styles = seed_identity(gen, 5)
    with torch.no_grad():
        target = F.avg_pool2d(gen.synthesis(seed_identity(gen, 6)), 4).clamp(-1, 1)
    term = IdentityTerm.of(DlibDescriptor(store.resolve("dlib_face_descriptor")), IdentityMetric(store), target)
    assert term is not None
    net = SynthesisNet(gen, styles, encoder.k, 256)
    zero = torch.zeros(1, encoder.k, 512)
    distances = {}
    for name, identity in (("without", None), ("with", term)):
        tuning = pivotal_tuning(net, target, lpips, encoder, steps=10, identity=identity)
        with torch.no_grad():
            distances[name] = float(term(SynthesisNet(gen, styles, encoder.k, 256, tuning=tuning)(zero))) ** 0.5
    # measured (the term at rest only): 0.63 without, 0.31 with (dlib: same person below 0.6)
    assert distances["with"] < distances["without"] - 0.15, distances


def test_the_identity_term_reads_a_moved_face_where_it_is(setup):
    """An offset's render is read at the chip dlib finds on it, so a face that moved is not judged off-centre (and
    pulled back) by the chip at rest."""
    pytest.importorskip("dlib", reason="pip install 'live[quality]'")
    from live.metrics.face_distance import IdentityMetric
    from live.train.dlib_net import DlibDescriptor
    from live.tuning import IdentityTerm

    gen, _, _ = setup
    store = AssetStore(progress=False)
    with torch.no_grad():
        face = F.avg_pool2d(gen.synthesis(seed_identity(gen, 6)), 4).clamp(-1, 1)
    term = IdentityTerm.of(DlibDescriptor(store.resolve("dlib_face_descriptor")), IdentityMetric(store), face)
    moved = torch.roll(face, shifts=(12, 20), dims=(2, 3))  # 20 px right, 12 down on the 256² view
    (chip,) = term.follow([moved])
    shift = (chip - term.grid).mean(dim=(0, 1, 2)) * 255 / 2  # in pixels (x, y)
    assert abs(float(shift[0]) - 20) < 4 and abs(float(shift[1]) - 12) < 4, shift
    with torch.no_grad():
        followed, fixed = float(term(moved, [chip])) ** 0.5, float(term(moved)) ** 0.5
    assert followed < 0.1 and fixed > followed + 0.1, (followed, fixed)
