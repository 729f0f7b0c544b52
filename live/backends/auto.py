"""`--backend auto` on a CPU: time the backends this install can run, on this machine, and take the fastest.

Which one wins depends on the CPU, not on a rule: on a 2-core AMD EPYC (avx512_bf16) compiled bf16 took 22.9 ms
per 256² frame and OpenVINO 41.2; on a 2-core Intel Xeon that also reports avx512_bf16, bf16 took 80-93 ms,
compiled f32 67, ONNX Runtime 63 and OpenVINO 52 (benchmarks/fps.py --stages synthesis). So the candidates are
timed per machine and network shape (a few frames each after warm-up, interleaved; ~1 min with the compiles)
and the choice is kept in `engines/auto-backend.json`. A choice timed while other work ran must not be kept
forever: each start runs the kept backend a few times, and when it is far from its recorded time (STALE) all
are timed again.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from live.atomic import save_text_atomic
from live.backends.base import Backend, BackendError

log = logging.getLogger(__name__)

CHOICES_NAME = "auto-backend.json"
WARMUP, RUNS = 2, 10  # runs per backend before timing, and timed rounds
CHECK_RUNS = 5  # timed runs of the kept choice at each start
NOISE_MS = 1.0  # differences this small are timer noise, not a stale choice
STALE = 1.5  # the kept choice is timed again when it runs this much slower (or faster) than when it was chosen


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
            key: str, clock: Callable[[], float] = time.perf_counter) -> tuple[str, Backend]:
    """(kind, backend) of the fastest of `kinds` on `feeds`. The choice kept in `choices` under `key` is used when
    its backend still runs near the time it was chosen at (a quick check: STALE); otherwise, and the first time,
    every kind is built and timed, interleaved (a kind that cannot be built here is skipped with a warning), and
    the choice is kept (written then renamed). clock: seconds, for tests."""
    kept = _read(choices)
    entry = kept.get(key)
    if isinstance(entry, dict) and entry.get("kind") in kinds:
        kind = entry["kind"]
        then = (entry.get("ms") or {}).get(kind)
        try:
            backend = build(kind)
            now = _median_ms(backend, feeds, CHECK_RUNS, clock)
        except (BackendError, ImportError, RuntimeError, OSError) as exc:
            log.warning("synthesis backend %s, chosen here before, cannot run now (%s): timing them all again",
                        kind, exc)
            return _time_all(kinds, build, feeds, choices, key, kept, clock, {})
        recorded = isinstance(then, (int, float))
        if recorded and (abs(now - then) <= NOISE_MS or then > 0 and 1 / STALE <= now / then <= STALE):
            log.info("synthesis backend: %s (fastest here when timed; %.1f ms per frame then, %.1f now; %s)",
                     kind, then, now, choices)
            return kind, backend
        log.warning("synthesis backend %s takes %.1f ms per frame now, %s when it was chosen (another load on the "
                    "machine then or now): timing the backends again", kind, now,
                    f"{then:.1f} ms" if recorded else "no time recorded")
        return _time_all(kinds, build, feeds, choices, key, kept, clock, {kind: backend})
    log.info("timing the synthesis backends on this machine (once; kept in %s): %s", choices, ", ".join(kinds))
    return _time_all(kinds, build, feeds, choices, key, kept, clock, {})


def _median_ms(backend: Backend, feeds: dict[str, np.ndarray], runs: int, clock: Callable[[], float]) -> float:
    """Median time of `runs` runs after WARMUP, in ms."""
    for _ in range(WARMUP):
        backend.run(feeds)
    times = []
    for _ in range(runs):
        t = clock()
        backend.run(feeds)
        times.append((clock() - t) * 1e3)
    return float(np.median(times))


def _time_all(kinds: list[str], build: Callable[[str], Backend], feeds: dict[str, np.ndarray], choices: Path,
              key: str, kept: dict, clock: Callable[[], float], built: dict[str, Backend]) -> tuple[str, Backend]:
    """Build and warm up every kind (reusing `built`), then time them in RUNS interleaved rounds: a burst of
    other work on the machine slows them alike instead of deciding against whichever ran during it."""
    backends: dict[str, Backend] = {}
    for kind in kinds:
        t0 = clock()
        try:
            backend = built.pop(kind, None) or build(kind)
            for _ in range(WARMUP):
                backend.run(feeds)
        except (BackendError, ImportError, RuntimeError, OSError) as exc:
            log.warning("synthesis backend %s cannot run here (%s): left out", kind, exc)
            continue
        backends[kind] = backend
        log.info("  %s: ready in %.0f s", kind, clock() - t0)
    if not backends:
        raise BackendError(f"none of the synthesis backends {', '.join(kinds)} runs here: see the warnings above")
    runs: dict[str, list[float]] = {kind: [] for kind in backends}
    order = list(backends)
    for r in range(RUNS):
        for kind in order[r % len(order):] + order[:r % len(order)]:  # each round starts with another kind
            if kind not in runs:
                continue
            t = clock()
            try:
                backends[kind].run(feeds)
            except (BackendError, RuntimeError, OSError) as exc:
                log.warning("synthesis backend %s failed while timed (%s): left out", kind, exc)
                del runs[kind]
                continue
            runs[kind].append((clock() - t) * 1e3)
    if not runs:
        raise BackendError(f"none of the synthesis backends {', '.join(kinds)} runs here: see the warnings above")
    timed = {kind: float(np.median(ms)) for kind, ms in runs.items()}
    best = min(timed, key=timed.get)
    log.info("synthesis backend: %s (fastest of %s)", best,
             ", ".join(f"{k} {v:.1f} ms" for k, v in sorted(timed.items(), key=lambda kv: kv[1])))
    kept[key] = {"kind": best, "ms": {k: round(v, 2) for k, v in timed.items()}, "date": time.strftime("%Y-%m-%d")}
    _write(choices, kept)
    return best, backends[best]


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
    try:
        save_text_atomic(Path(path), json.dumps(data, indent=2))
    except OSError as exc:  # a read-only engines folder: the choice is timed again next time
        log.warning("cannot keep the backend choice in %s (%s)", path, exc)
