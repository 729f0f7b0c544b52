"""Shared test helpers: the shared data folder, the landmarker model, MediaPipe in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("GLOG_minloglevel", "2")
    return env


def sigint_default() -> None:
    """Popen preexec_fn: give the child the default Ctrl-C behaviour. A test run started in the background
    by a non-interactive shell (as CI may) inherits SIGINT *ignored*, and Python then never raises
    KeyboardInterrupt: the Ctrl-C tests would test nothing."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_py(code: str, timeout: float = 180.0) -> dict:
    """Run Python code in a fresh interpreter; it must print one JSON object as its last stdout line.

    MediaPipe runs this way: a FaceLandmarker created after a graph error in the same process can hang,
    so every test gets its own process and a timeout instead.
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=subprocess_env(), cwd=REPO)
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def start_recording(out: Path, clip: Path, landmarker_path: Path, wait_s: float = 4.0) -> subprocess.Popen:
    """`live track CLIP --realtime --loop -o OUT` in a subprocess with the default Ctrl-C behaviour, returned once
    its recording has been running for `wait_s` (a fresh venv imports slowly: up to 90 s to get there)."""
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "live", "track", str(clip), "--realtime", "--loop", "-o", str(out),
         "--asset", f"face_landmarker={landmarker_path}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(), cwd=REPO,
        preexec_fn=sigint_default)
    end = time.monotonic() + 90
    while len(list(out.parent.iterdir())) < 2 and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(wait_s)
    return proc


@pytest.fixture()
def recording():
    """start_recording for a test; a recording the test left running (it failed first) is killed after it."""
    procs: list[subprocess.Popen] = []

    def start(*args, **kwargs) -> subprocess.Popen:
        procs.append(start_recording(*args, **kwargs))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def stop_with_ctrl_c(proc: subprocess.Popen, presses: int = 1, gap_s: float = 0.05) -> str:
    """Press Ctrl-C `presses` times, `gap_s` apart; the process's stderr once it ended (a test failure if it
    does not end within 30 s)."""
    import signal
    import time

    for i in range(presses):
        if i:
            time.sleep(gap_s)
        proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
        return err if err is not None else out or ""  # stdout where stderr went into it
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the process did not stop after {presses} Ctrl-C")


def run_live(*args: str, timeout: float = 300.0, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the `live` CLI as a user would (python -m live)."""
    return subprocess.run([sys.executable, "-m", "live", *args], capture_output=True, text=True, timeout=timeout,
                          env=subprocess_env(), cwd=cwd or REPO, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def landmarker_path() -> Path:
    from live.assets import AssetStore

    return AssetStore(progress=False).resolve("face_landmarker")


@pytest.fixture(scope="session")
def driving_clips() -> list[Path]:
    clips = sorted((SHARED / "driving").glob("*.mp4"))
    if not clips:
        pytest.skip(f"no driving clips in {SHARED / 'driving'} (../shared is not beside this checkout)")
    return clips


@pytest.fixture()
def clip(tmp_path) -> Path:
    """A 30-frame 256x256 .avi of the astronaut moving (MJPG: exact frame count, quick to write)."""
    from live.samples import moving_clip

    return moving_clip(tmp_path / "clip.avi", frames=30, size=256)
