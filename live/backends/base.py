"""The one interface every backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class BackendError(RuntimeError):
    """A backend cannot be built or run here; the message says why and what to install."""


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]  # fixed shape (batch included)
    dtype: str = "float32"


@runtime_checkable
class Backend(Protocol):
    name: str  # e.g. "torch", "onnxruntime", "openvino", "tensorrt", "fake"

    def inputs(self) -> dict[str, TensorSpec]: ...

    def outputs(self) -> dict[str, TensorSpec]: ...

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def check_feeds(backend: Backend, feeds: dict[str, np.ndarray]) -> None:
    """Raise ValueError naming the input when a feed is missing or has the wrong shape."""
    for name, spec in backend.inputs().items():
        if name not in feeds:
            raise ValueError(f"{backend.name}: missing input {name!r}")
        if tuple(feeds[name].shape) != spec.shape:
            raise ValueError(f"{backend.name}: input {name!r} has shape {list(feeds[name].shape)}, "
                             f"expected {list(spec.shape)}")
