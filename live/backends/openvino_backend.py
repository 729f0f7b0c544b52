"""OpenVINO on the CPU, from an ONNX file (or IR). Precision f32 by default: on CPUs with bf16 support
OpenVINO would otherwise silently run bf16."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from live.backends.base import BackendError, TensorSpec, check_feeds


class OpenVinoBackend:
    name = "openvino"

    def __init__(self, model_path: Path, precision: str = "f32", threads: int | None = None):
        # model_path: .onnx or .xml; precision: "f32" or "bf16" (INFERENCE_PRECISION_HINT);
        # threads: inference threads (default: OpenVINO's choice).
        try:
            import openvino as ov
        except ImportError:
            raise BackendError("OpenVINO is not installed: pip install 'live[openvino]'") from None
        if precision not in ("f32", "bf16", "f16"):
            raise BackendError(f"OpenVINO precision must be f32, bf16 or f16, got {precision!r}")
        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": precision}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core.compile_model(core.read_model(str(model_path)), "CPU", config)
        self.request = self.compiled.create_infer_request()
        if precision != "f32":
            self.name = f"openvino-{precision}"

    @staticmethod
    def _specs(ports) -> dict[str, TensorSpec]:
        return {p.get_any_name(): TensorSpec(tuple(int(d) for d in p.get_shape()), "float32") for p in ports}

    def inputs(self) -> dict[str, TensorSpec]:
        return self._specs(self.compiled.inputs)

    def outputs(self) -> dict[str, TensorSpec]:
        return self._specs(self.compiled.outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        check_feeds(self, feeds)
        result = self.request.infer(feeds)
        return {p.get_any_name(): np.asarray(result[p]) for p in self.compiled.outputs}
