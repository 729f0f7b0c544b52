"""TensorRT (>= 10): build an FP16 engine from ONNX, bind tensors by name, run with execute_async_v3 on a
CUDA stream. Buffers are torch CUDA tensors allocated once. TensorRT's libraries come from NVIDIA's own
package index, so this module imports it lazily and says how to get it when it is missing."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from live.backends.base import BackendError, TensorSpec, check_feeds

log = logging.getLogger(__name__)
INSTALL_HINT = ("TensorRT is not installed: on a CUDA machine, pip install tensorrt "
                "--extra-index-url https://pypi.nvidia.com (it cannot be installed on CPU-only machines)")


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendError(INSTALL_HINT) from None
    if int(trt.__version__.split(".")[0]) < 10:
        raise BackendError(f"TensorRT {trt.__version__} is too old: live needs TensorRT >= 10")
    return trt


def build_engine(onnx_path: Path, fp16: bool = True, workspace_gb: float = 4.0) -> bytes:
    """Serialized engine bytes from an ONNX file (static shapes)."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise BackendError(f"TensorRT failed to build an engine from {onnx_path}")
    return bytes(engine)


class TensorRtBackend:
    name = "tensorrt"

    def __init__(self, engine_path: Path):
        # engine_path: a serialized engine from build_engines.py (named by everything it depends on).
        trt = import_tensorrt()
        import torch

        if not torch.cuda.is_available():
            raise BackendError("TensorRT needs a CUDA GPU, and torch sees none")
        self._torch = torch
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise BackendError(f"{engine_path} is not a TensorRT engine for this GPU and TensorRT version")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self._in, self._out, self.buffers = {}, {}, {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            spec = TensorSpec(shape, "float32")
            buf = torch.empty(shape, dtype=torch.float32, device="cuda")
            self.buffers[name] = buf
            self.context.set_tensor_address(name, buf.data_ptr())
            (self._in if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else self._out)[name] = spec

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._in)

    def outputs(self) -> dict[str, TensorSpec]:
        return dict(self._out)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        check_feeds(self, feeds)
        torch = self._torch
        with torch.cuda.stream(self.stream):
            for name in self._in:
                self.buffers[name].copy_(torch.as_tensor(feeds[name]), non_blocking=True)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise BackendError("TensorRT execution failed")
            out = {name: self.buffers[name].cpu().numpy() for name in self._out}
        self.stream.synchronize()
        return out


def engine_path(onnx_path: Path, engines_dir: Path, fp16: bool = True) -> Path:
    """The engine for `onnx_path` on this GPU, built (atomically) if missing. Its name carries what it
    depends on: the ONNX file's hash and shapes (in its stem), TensorRT version, GPU name, precision."""
    import hashlib
    import os
    import tempfile

    trt = import_tensorrt()
    import torch

    if not torch.cuda.is_available():
        raise BackendError("TensorRT needs a CUDA GPU, and torch sees none")
    digest = hashlib.sha256(Path(onnx_path).read_bytes()).hexdigest()[:12]
    gpu = "".join(c if c.isalnum() else "_" for c in torch.cuda.get_device_name())
    path = Path(engines_dir) / (f"{Path(onnx_path).stem}-onnx{digest}-trt{trt.__version__}-{gpu}-"
                                f"{'fp16' if fp16 else 'fp32'}.engine")
    if not path.exists():
        log.info("building TensorRT engine %s (minutes, once)", path.name)
        data = build_engine(onnx_path, fp16=fp16)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return path
