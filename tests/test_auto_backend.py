"""`--backend auto` on a CPU: the fastest backend this install runs on this machine, timed once and kept."""

import json
import logging
import time

import numpy as np
import pytest

from live.backends.auto import CHECK_RUNS, RUNS, STALE, WARMUP, cpu_candidates, fastest, machine_key
from live.backends.base import BackendError, TensorSpec
from live.backends.fake import FakeBackend
from live.render import BACKENDS

SPEC = {"offset": TensorSpec((1, 2, 512))}
FEEDS = {"offset": np.zeros((1, 2, 512), np.float32)}


class SlowBackend(FakeBackend):
    def run(self, feeds):
        time.sleep(0.02)
        return super().run(feeds)


def builder(built: list[str], broken: tuple[str, ...] = ()):
    def build(kind: str):
        built.append(kind)
        if kind in broken:
            raise BackendError(f"{kind} is not installed")
        return (SlowBackend if kind == "slow" else FakeBackend)(SPEC, {"image": TensorSpec((1, 3, 4, 4))})
    return build


def test_auto_takes_the_fastest_and_keeps_the_choice(tmp_path, caplog):
    choices, built = tmp_path / "engines" / "auto-backend.json", []
    kind, backend = fastest(["slow", "quick"], builder(built), FEEDS, choices, "machine-a")
    assert kind == "quick" and backend.calls > 0 and built == ["slow", "quick"]
    kept = json.loads(choices.read_text())["machine-a"]
    assert kept["kind"] == "quick" and kept["ms"]["slow"] > kept["ms"]["quick"]
    built.clear()
    kind, backend = fastest(["slow", "quick"], builder(built), FEEDS, choices, "machine-a")
    assert kind == "quick" and built == ["quick"]  # kept: only it is built, and checked with a few runs
    assert backend.calls == WARMUP + CHECK_RUNS
    built.clear()
    assert fastest(["slow", "quick"], builder(built), FEEDS, choices, "machine-b")[0] == "quick"  # another machine
    assert built == ["slow", "quick"] and set(json.loads(choices.read_text())) == {"machine-a", "machine-b"}
    choices.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert fastest(["slow", "quick"], builder([]), FEEDS, choices, "machine-a")[0] == "quick"
    assert "unreadable backend choices" in caplog.text and json.loads(choices.read_text())["machine-a"]


def test_auto_leaves_out_a_backend_that_cannot_run(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        kind, _ = fastest(["quick", "slow"], builder([], broken=("quick",)), FEEDS, tmp_path / "c.json", "m")
    assert kind == "slow" and "quick cannot run here" in caplog.text
    with pytest.raises(BackendError, match="none of the synthesis backends"):
        fastest(["quick"], builder([], broken=("quick",)), FEEDS, tmp_path / "d.json", "m")


def test_cpu_candidates_are_real_kinds_this_install_has():
    kinds = cpu_candidates()
    assert kinds and set(kinds) <= set(BACKENDS) - {"auto", "tensorrt"}
    assert {"onnxruntime", "openvino"} <= set(kinds)  # the test extras install both
    key = machine_key("k10-s256", kinds)
    assert "k10-s256" in key and "torch=" in key and key == machine_key("k10-s256", kinds)


class Clock:
    """Fake seconds that pass only when a backend runs: `load` slows the runs it covers (other work)."""

    def __init__(self):
        self.t = 0.0
        self.runs = 0
        self.load = lambda run: 1.0  # run number -> slowdown

    def __call__(self) -> float:
        return self.t


class ClockedBackend(FakeBackend):
    """Takes `ms` of the fake clock per run."""

    def __init__(self, clock: Clock, ms: float):
        super().__init__(SPEC, {"image": TensorSpec((1, 3, 4, 4))})
        self.clock, self.ms = clock, ms

    def run(self, feeds):
        self.clock.t += self.ms * self.clock.load(self.clock.runs) / 1e3
        self.clock.runs += 1
        return super().run(feeds)


def clocked(clock: Clock, ms: dict[str, float], built: list[str]):
    def build(kind: str):
        built.append(kind)
        return ClockedBackend(clock, ms[kind])
    return build


def test_a_kept_choice_far_from_its_recorded_time_is_timed_again(tmp_path, caplog):
    clock, choices, built = Clock(), tmp_path / "auto-backend.json", []
    ms = {"a": 10.0, "b": 12.0}
    assert fastest(["a", "b"], clocked(clock, ms, built), FEEDS, choices, "m", clock)[0] == "a"
    assert json.loads(choices.read_text())["m"]["ms"] == {"a": 10.0, "b": 12.0}
    built.clear()
    ms["a"] = 10.0 * (STALE - 0.1)  # a little slower today: kept, nothing else built
    assert fastest(["a", "b"], clocked(clock, ms, built), FEEDS, choices, "m", clock)[0] == "a" and built == ["a"]
    built.clear()
    ms["a"] = 30.0  # far slower than when chosen: all are timed again, and b is kept now
    with caplog.at_level(logging.WARNING):
        assert fastest(["a", "b"], clocked(clock, ms, built), FEEDS, choices, "m", clock)[0] == "b"
    assert built == ["a", "b"] and "timing the backends again" in caplog.text
    assert json.loads(choices.read_text())["m"]["ms"] == {"a": 30.0, "b": 12.0}
    built.clear()
    ms.update(a=3.0, b=4.0)  # b was timed under load: far faster today, so the others get their chance again
    assert fastest(["a", "b"], clocked(clock, ms, built), FEEDS, choices, "m", clock)[0] == "a"
    assert built == ["b", "a"] and json.loads(choices.read_text())["m"]["kind"] == "a"


def test_a_burst_of_other_work_while_timing_slows_every_backend_alike(tmp_path):
    """The first 40% of the runs are 3x slower (something else ran then). Timed one backend after the other,
    a (10 ms) would take the burst and lose to b (12 ms); interleaved, both medians stay clean."""
    clock = Clock()
    burst = int(0.4 * 2 * (WARMUP + RUNS))
    clock.load = lambda run: 3.0 if run < burst else 1.0
    kind, _ = fastest(["a", "b"], clocked(clock, {"a": 10.0, "b": 12.0}, []), FEEDS, tmp_path / "c.json", "m", clock)
    assert kind == "a", json.loads((tmp_path / "c.json").read_text())
