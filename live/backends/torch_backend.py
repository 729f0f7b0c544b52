"""torch: the reference backend. CPU or CUDA; optional torch.compile (inductor, weights frozen), bf16
autocast, and on CUDA a captured CUDA graph. Each fast path is built lazily on the first run."""

from __future__ import annotations

import logging

import numpy as np
import torch

from live.backends.base import BackendError, TensorSpec, check_feeds

log = logging.getLogger(__name__)


def native_bf16() -> bool:
    """True on CPUs with native bf16 arithmetic (avx512_bf16 or AMX)."""
    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


class TorchBackend:
    name = "torch"

    def __init__(self, module: torch.nn.Module, inputs: dict[str, TensorSpec], outputs: dict[str, TensorSpec],
                 device: str = "cpu", compile: bool = False, bf16: bool = False, cuda_graph: bool = False,
                 host_outputs: bool = True):
        # module: takes the inputs positionally in `inputs` order, returns one tensor or a tuple in
        # `outputs` order; device: "cpu" or "cuda[:n]"; compile: torch.compile with frozen weights;
        # bf16: autocast to bfloat16 (CPUs with avx512_bf16/AMX, GPUs); cuda_graph: capture on CUDA;
        # host_outputs: return numpy (else torch tensors left on the device, for the GPU path).
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"device {device!r} asked for, but torch sees no CUDA GPU")
        if cuda_graph and not device.startswith("cuda"):
            raise BackendError("CUDA graphs need a CUDA device (--device cuda)")
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self._inputs, self._outputs = inputs, outputs
        self.compile, self.bf16, self.cuda_graph, self.host_outputs = compile, bf16, cuda_graph, host_outputs
        if compile:
            self.name = "torch-compile"
        if bf16:
            self.name += "-bf16"
        self._fn = None
        self._graph = None

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._inputs)

    def outputs(self) -> dict[str, TensorSpec]:
        return dict(self._outputs)

    def _build(self) -> None:
        fn = self.module
        if self.compile:
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True  # weights become constants: prepacked convolution kernels
            log.info("compiling the %s model with torch.compile (first run only; cached after)", self.name)
            fn = torch.compile(fn)
        self._fn = fn

    def _call(self, *args: torch.Tensor):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            try:
                out = self._fn(*args)
            except Exception as exc:  # noqa: BLE001 - inductor raises many types (no compiler, codegen bugs)
                if self._fn is self.module:
                    raise
                # Remembered: compile once failed, so this backend runs eager from now on.
                log.warning("torch.compile failed (%s: %s); running the model uncompiled from now on",
                            type(exc).__name__, str(exc).splitlines()[0][:200])
                self._fn = self.module
                out = self._fn(*args)
        return out if isinstance(out, tuple) else (out,)

    @torch.inference_mode()
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray | torch.Tensor]:
        check_feeds(self, feeds)
        if self._fn is None:
            self._build()
        args = [torch.as_tensor(feeds[k]).to(self.device, non_blocking=True) for k in self._inputs]
        if self.cuda_graph:
            outs = self._run_graph(args)
        else:
            outs = self._call(*args)
        if not self.host_outputs:
            return {k: v.clone() if self.cuda_graph else v for k, v in zip(self._outputs, outs, strict=True)}
        return {k: v.float().cpu().numpy() for k, v in zip(self._outputs, outs, strict=True)}

    def _run_graph(self, args: list[torch.Tensor]):
        if self._graph is None:
            self._static_in = [a.clone() for a in args]
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm up outside the graph (allocations, autotuning)
                    self._call(*self._static_in)
            torch.cuda.current_stream().wait_stream(stream)
            self._graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._graph):
                self._static_out = self._call(*self._static_in)
        for dst, src in zip(self._static_in, args, strict=True):
            dst.copy_(src)
        self._graph.replay()
        return self._static_out
