"""`--backend auto` on a CPU: the fastest backend this install runs on this machine, timed once and kept."""

import json
import logging
import time

import numpy as np
import pytest

from live.backends.auto import cpu_candidates, fastest, machine_key
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
    assert kind == "quick" and built == ["quick"] and backend.calls == 0  # kept: nothing timed again
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
