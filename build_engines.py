"""Build the synthesis network for an identity as ONNX (validated against torch with ONNX Runtime) and,
where TensorRT is importable (CUDA machines), as an FP16 TensorRT engine. Files go to engines/, named
by everything they depend on, written atomically.

    python build_engines.py --seed 0 --size 256
    python build_engines.py --seed 0 --size 1024 --tensorrt     # on a CUDA machine with TensorRT

The offset covers the style layers the default deformation encoder drives (its K, 10), so `live run` finds
the engine built here.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("build_engines")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0, help="generated identity to bake in (default 0)")
    p.add_argument("--truncation", type=float, default=0.7)
    p.add_argument("--size", type=int, default=256, choices=[256, 512, 1024], help="output side")
    p.add_argument("--k", type=int, help="style layers that take the per-frame offset (default: the default "
                                        "encoder's, 10)")
    p.add_argument("--no-early-exit", action="store_true", help="below 1024: render 1024 and downsample")
    p.add_argument("--head", choices=["auto", "learned", "linear"], default="auto",
                   help="the early exit's head, as `live run --head` (a generated face: auto = learned)")
    p.add_argument("--tensorrt", action="store_true", help="also build a TensorRT FP16 engine (needs tensorrt)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: engines/ in the checkout)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from live.assets import AssetStore
    from live.backends.base import BackendError
    from live.models.generator import load_mobilestylegan
    from live.render import ENGINES_DIR, SynthesisNet, export_onnx, onnx_name, seed_identity

    if args.k is None:
        from live.encoder import load_encoder

        args.k = load_encoder().k
    out = args.out or ENGINES_DIR
    gen = load_mobilestylegan(AssetStore(progress=sys.stderr.isatty()))
    identity = seed_identity(gen, args.seed, args.truncation)
    net = SynthesisNet(gen, identity, args.k, args.size, early_exit=not args.no_early_exit,
                       learned_head=args.head != "linear")
    path = out / onnx_name(gen, identity, args.k, args.size, net.head_tag)
    t0 = time.time()
    export_onnx(net, path)
    log.info("ONNX: %s (%.1f MB, %.1f s)", path, path.stat().st_size / 1e6, time.time() - t0)
    try:
        import onnxruntime as ort
    except ImportError:
        log.warning("onnxruntime is not installed: the export is not validated (pip install 'live[onnx]')")
    else:
        offset = (np.random.RandomState(0).randn(1, args.k, 512) * 0.3).astype(np.float32)
        with torch.inference_mode():
            ref = net(torch.from_numpy(offset)).numpy()
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"offset": offset})[0]
        diff = float(np.abs(got - ref).max())
        log.info("validated with ONNX Runtime: max |diff| vs torch = %.2e", diff)
        if diff > 1e-3:
            log.error("the export differs from torch by more than 1e-3")
            return 1
    if args.tensorrt:
        from live.backends.tensorrt_backend import engine_path

        try:
            log.info("TensorRT engine: %s", engine_path(path, out))
        except BackendError as exc:
            log.error("%s", exc)
            return 1
    else:
        try:
            import tensorrt  # noqa: F401
            log.info("tensorrt is importable: add --tensorrt to build an FP16 engine")
        except ImportError:
            log.info("tensorrt is not importable here: no TensorRT engine (CUDA machines only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
