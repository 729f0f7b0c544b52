"""Bad inputs and rough handling, one test per case (issue 23's list and the classes of input it stands for):
each must end in a clear sentence that names what was wrong and what to do, never a traceback, a crash or a
damaged file. Add a case here when a new one is found."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO, run_live, sigint_default, subprocess_env


def truncated_jpeg(path: Path) -> Path:
    """The astronaut as a JPEG whose last third is missing (a download that did not finish)."""
    from skimage import data

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    path.write_bytes(buf.tobytes()[: len(buf) * 2 // 3])
    return path


def test_a_truncated_jpeg_is_refused_not_enrolled_half_grey(tmp_path):
    from live.enroll import EnrollError, read_portrait
    from live.image_file import truncated

    bad = truncated_jpeg(tmp_path / "cut.jpg")
    assert cv2.imread(str(bad)) is not None  # OpenCV alone decodes it, grey where the data is missing
    with pytest.raises(EnrollError, match="truncated.*copy the portrait again"):
        read_portrait(bad)
    whole = tmp_path / "whole.jpg"
    cv2.imwrite(str(whole), np.full((64, 64, 3), 90, np.uint8))
    assert not truncated(whole) and read_portrait(whole).shape == (64, 64, 3)
    r = run_live("track", str(bad), "-o", str(tmp_path / "t.mp4"), timeout=120)
    assert r.returncode == 2 and "truncated" in r.stderr and "Traceback" not in r.stderr, r.stderr


def identity_file(tmp_path: Path, name: str, **change) -> Path:
    """A real identity file (a generated identity's styles and the shared 256² head) with `change` applied:
    styles, head_weight, head_bias."""
    from live.assets import AssetStore
    from live.identity_file import Identity, save_identity
    from live.models.early_exit import load_heads
    from live.models.generator import load_mobilestylegan
    from live.render import seed_identity

    gen = load_mobilestylegan(AssetStore(progress=False))
    weight, bias = load_heads()[256]
    styles = change.get("styles", seed_identity(gen, 0))
    head = (change.get("head_weight", weight.clone()), change.get("head_bias", bias.clone()))
    ident = Identity(styles=styles, crop=np.zeros((256, 256, 3), np.uint8), generator="mobilestylegan",
                     generator_sha256=gen.source_sha256, head=head)
    return save_identity(ident, tmp_path / f"{name}.lvid")


@pytest.mark.parametrize("name, says", [
    ("nan_head", "tuned head with values that are not finite"),
    ("absurd_styles", "not finite W+ vectors"),
    ("wrong_head_shape", "tuned head of shapes"),
])
def test_a_damaged_identity_file_is_refused_at_load(tmp_path, clip, name, says):
    from live.identity_file import IdentityFileError, load_identity
    from live.models.early_exit import load_heads

    weight = load_heads()[256][0]
    change = {"nan_head": {"head_weight": torch.full_like(weight, float("nan"))},
              "absurd_styles": {"styles": torch.full((1, 23, 512), 1e30)},
              "wrong_head_shape": {"head_weight": torch.zeros(3, 3, 3, 3)}}[name]
    path = identity_file(tmp_path, name, **change)
    with pytest.raises(IdentityFileError, match=re.escape(says)) as exc:
        load_identity(path)
    assert str(path) in str(exc.value) and "enroll the portrait again" in str(exc.value)
    r = run_live("run", "--identity", str(path), "--input", str(clip), "-o", str(tmp_path / "out.mp4"),
                 "--no-avatar-fit", "--backend", "torch", timeout=120)
    assert r.returncode != 0 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_a_sound_identity_file_loads(tmp_path):
    from live.identity_file import load_identity

    assert load_identity(identity_file(tmp_path, "fine")).head[0].shape[0] == 12


def test_two_quick_ctrl_c_stop_cleanly(tmp_path, clip, landmarker_path):
    """Two Ctrl-C 50 ms apart: the second one must not abort the process (it did: rc 134, "terminate called
    without an active exception"), and the recording is kept."""
    out = tmp_path / "rec.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "live", "track", str(clip), "--realtime", "--loop", "-o", str(out),
         "--asset", f"face_landmarker={landmarker_path}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(), cwd=REPO,
        preexec_fn=sigint_default)
    end = time.monotonic() + 90
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("live track did not stop after two Ctrl-C")
    assert proc.returncode == 130 and "terminate called" not in stderr and "Traceback" not in stderr, stderr
    assert out.is_file() and out.stat().st_size > 0
