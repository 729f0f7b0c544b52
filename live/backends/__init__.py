"""Inference backends behind one interface: `inputs()`, `outputs()`, `run(feeds) -> dict`.

torch (CPU/CUDA, optional torch.compile, bf16, CUDA graphs), ONNX Runtime, OpenVINO, TensorRT and a fake
for tests. Stages hold a `Backend` and never ask which kind it is.
"""

from live.backends.base import Backend, BackendError, TensorSpec

__all__ = ["Backend", "BackendError", "TensorSpec"]
