"""A backend that computes nothing: deterministic outputs of the declared shapes (pipeline tests)."""

from __future__ import annotations

import numpy as np

from live.backends.base import TensorSpec, check_feeds


class FakeBackend:
    name = "fake"

    def __init__(self, inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec], value: float = 0.0):
        # inputs / outputs: the specs it claims; value: what every output element holds.
        self._inputs, self._outputs, self.value = inputs, outputs, value
        self.calls = 0

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._inputs)

    def outputs(self) -> dict[str, TensorSpec]:
        return dict(self._outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        check_feeds(self, feeds)
        self.calls += 1
        return {k: np.full(s.shape, self.value, dtype=s.dtype) for k, s in self._outputs.items()}
