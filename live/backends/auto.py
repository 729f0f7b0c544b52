"""`--backend auto` on a CPU: time the backends this install can run, on this machine, and take the fastest.

Which one wins depends on the CPU, not on a rule: on a 2-core AMD EPYC (avx512_bf16) compiled bf16 took 22.9 ms
per 256² frame and OpenVINO 41.2; on a 2-core Intel Xeon that also reports avx512_bf16, bf16 took 80-93 ms,
compiled f32 67, ONNX Runtime 63 and OpenVINO 52 (benchmarks/fps.py --stages synthesis). So the candidates are
timed once per machine and network shape (a few frames each after warm-up; the first time only, ~1 min with the
compiles) and the choice is kept in `engines/auto-backend.json`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from live.backends.base import Backend, BackendError

log = logging.getLogger(__name__)

CHOICES_NAME = "auto-backend.json"
WARMUP, RUNS = 2, 10


def cpu_candidates() -> list[str]:
    """The CPU backends this install can build: the compiled torch variants where a C++ compiler exists (bf16
    only on CPUs with native bf16), else plain torch; ONNX Runtime and OpenVINO where they are installed."""
    from live.backends.torch_backend import native_bf16

    if any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        kinds = (["torch-compile-bf16"] if native_bf16() else []) + ["torch-compile"]
    else:
        kinds = ["torch"]
    return kinds + [kind for kind, module in (("onnxruntime", "onnxruntime"), ("openvino", "openvino"))
                    if importlib.util.find_spec(module) is not None]


def machine_key(shape: str, kinds: list[str]) -> str:
    """What the timing depends on: the CPU, its core count, the network shape, the candidates and versions."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "-"

    return "|".join([cpu_name(), str(os.cpu_count()), shape, ",".join(kinds),
                     *(f"{d}={ver(d)}" for d in ("torch", "onnxruntime", "openvino"))])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: the platform's own name
    return platform.processor() or platform.machine()


def fastest(kinds: list[str], build: Callable[[str], Backend], feeds: dict[str, np.ndarray], choices: Path,
            key: str) -> tuple[str, Backend]:
    """(kind, backend) of the fastest of `kinds` on `feeds`: the choice kept in `choices` under `key` when there
    is one, else each is built and timed (a kind that cannot be built here is skipped with a warning) and the
    choice is kept (written then renamed)."""
    kept = _read(choices)
    if key in kept and kept[key].get("kind") in kinds:
        kind = kept[key]["kind"]
        log.info("synthesis backend: %s (fastest here when timed; %s)", kind, choices)
        return kind, build(kind)
    log.info("timing the synthesis backends on this machine (once; kept in %s): %s", choices, ", ".join(kinds))
    timed: dict[str, float] = {}
    best: tuple[str, Backend] | None = None
    for kind in kinds:
        t0 = time.perf_counter()
        try:
            backend = build(kind)
            for _ in range(WARMUP):
                backend.run(feeds)
            ready = time.perf_counter() - t0
            runs = []
            for _ in range(RUNS):
                t = time.perf_counter()
                backend.run(feeds)
                runs.append((time.perf_counter() - t) * 1e3)
        except (BackendError, ImportError, RuntimeError, OSError) as exc:
            log.warning("synthesis backend %s cannot run here (%s): left out", kind, exc)
            continue
        timed[kind] = float(np.median(runs))
        log.info("  %s: %.1f ms per frame (ready in %.0f s)", kind, timed[kind], ready)
        if best is None or timed[kind] < timed[best[0]]:
            best = (kind, backend)
    if best is None:
        raise BackendError(f"none of the synthesis backends {', '.join(kinds)} runs here: see the warnings above")
    log.info("synthesis backend: %s (fastest of %s)", best[0],
             ", ".join(f"{k} {v:.1f} ms" for k, v in sorted(timed.items(), key=lambda kv: kv[1])))
    kept[key] = {"kind": best[0], "ms": {k: round(v, 2) for k, v in timed.items()},
                 "date": time.strftime("%Y-%m-%d")}
    _write(choices, kept)
    return best


def _read(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable backend choices %s (%s): timing again", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict) -> None:
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only engines folder: the choice is timed again next time
        log.warning("cannot keep the backend choice in %s (%s)", path, exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
