"""Build inference engines for the models `live` runs (ONNX exports; TensorRT engines on CUDA machines).

Today the pipeline has no exportable network of its own yet (tracking runs MediaPipe's bundled
TFLite models), so this prints the plan: what it would build, with which backends available here.
The synthesis and encoder issues fill in the exports.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from pathlib import Path

log = logging.getLogger("build_engines")

ENGINES = Path(__file__).resolve().parent / "engines"
PLANNED = [
    ("synthesis", "MobileStyleGAN-FFHQ-1024 generator, identity fixed, per resolution 256/512/1024"),
    ("encoder", "deformation encoder: driving signals -> W+ offset of the first K style layers"),
]


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="only say what would be built (the default for now)")
    p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    backends = {name: available(mod) for name, mod in
                (("torch", "torch"), ("onnx export", "onnx"), ("onnxruntime", "onnxruntime"),
                 ("openvino", "openvino"), ("tensorrt", "tensorrt"))}
    log.info("output folder: %s", ENGINES)
    log.info("backends here: %s", ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in backends.items()))
    if not backends["tensorrt"]:
        log.info("tensorrt is not importable: TensorRT engines are skipped (install it from NVIDIA's index "
                 "on a CUDA machine)")
    for name, what in PLANNED:
        log.info("would build %-10s %s (not yet implemented: comes with the synthesis/encoder issues)", name, what)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
