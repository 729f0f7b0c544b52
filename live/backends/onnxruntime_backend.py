"""ONNX Runtime: CPU, and the CUDA / TensorRT execution providers where installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from live.backends.base import BackendError, TensorSpec, check_feeds

PROVIDERS = {"cpu": ["CPUExecutionProvider"],
             "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
             "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]}


class OrtBackend:
    name = "onnxruntime"

    def __init__(self, onnx_path: Path, device: str = "cpu", threads: int | None = None):
        # onnx_path: the exported model; device: "cpu", "cuda" or "tensorrt" (execution providers);
        # threads: intra-op threads (default: ONNX Runtime's choice, the physical cores).
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendError("ONNX Runtime is not installed: pip install 'live[onnx]'") from None
        wanted = PROVIDERS.get(device)
        if wanted is None:
            raise BackendError(f"unknown ONNX Runtime device {device!r}; use one of {', '.join(PROVIDERS)}")
        missing = [p for p in wanted[:1] if p not in ort.get_available_providers()]
        if missing:
            raise BackendError(f"ONNX Runtime here has no {missing[0]} (available: "
                               f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu for CUDA")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=wanted)
        if device != "cpu":
            self.name = f"onnxruntime-{device}"

    @staticmethod
    def _specs(args) -> dict[str, TensorSpec]:
        return {a.name: TensorSpec(tuple(a.shape), "float32") for a in args}

    def inputs(self) -> dict[str, TensorSpec]:
        return self._specs(self.session.get_inputs())

    def outputs(self) -> dict[str, TensorSpec]:
        return self._specs(self.session.get_outputs())

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        check_feeds(self, feeds)
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, feeds), strict=True))
