"""Post-training int8 quantisation of the live 256² synthesis network with ONNX Runtime: speed and quality cost.

    python benchmarks/int8_probe.py --json benchmarks/results/int8-probe.json

A probe for issue 26, not a backend: it quantises the ONNX model `--backend onnxruntime` exports (engines/, built
on first use: run `live demo --backend onnxruntime` once), calibrated on offsets the encoder makes for random
expressions and head turns (identity seed 0, folded in), and reports p50/p95 ms per frame and LPIPS(VGG16) of each
variant against the f32 output on held-out offsets. Results and what they mean: benchmarks/SPEED.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
log = logging.getLogger("benchmarks.int8_probe")
ENGINES = Path(__file__).resolve().parent.parent / "engines"
EXPRESSIONS = ("mouthSmileLeft", "mouthSmileRight", "jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "browInnerUp")


def offsets(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """[1,K,512] float32 offsets the encoder makes for random expressions (0..0.9) and turns (yaw ±25°, pitch ±15°)."""
    from live.encoder import load_encoder
    from live.frames import BLENDSHAPE_NAMES
    from live.models.encoder import signal_vector

    enc, out = load_encoder(), []
    for _ in range(n):
        blend = np.zeros(len(BLENDSHAPE_NAMES), np.float32)
        for name in EXPRESSIONS:
            blend[BLENDSHAPE_NAMES.index(name)] = rng.uniform(0, 0.9)
        pose = np.array([rng.uniform(-25, 25), rng.uniform(-15, 15), 0], np.float32)
        out.append(enc(signal_vector(blend, pose)).astype(np.float32))
    return out


def variants(convs: list[str]) -> dict[str, dict]:
    """name -> quantize_static options (on top of QDQ, per-channel int8 weights, uint8 activations)."""
    from onnxruntime.quantization import CalibrationMethod, QuantType

    pct = {"calibrate_method": CalibrationMethod.Percentile, "extra_options": {"CalibPercentile": 99.99}}
    return {
        "all, min-max": {},
        "all, percentile 99.99": pct,
        "all, entropy": {"calibrate_method": CalibrationMethod.Entropy},
        "convs only, min-max": {"op_types_to_quantize": ["Conv"]},
        "convs only, percentile": {"op_types_to_quantize": ["Conv"], **pct},
        "convs only, percentile, last 4 convs f32": {"op_types_to_quantize": ["Conv"], "nodes_to_exclude": convs[-4:],
                                                     **pct},
        "16-bit activations": {"activation_type": QuantType.QUInt16},
    }


def quantise(model: Path, out: Path, calibration: list[np.ndarray], **options) -> None:
    """ONNX Runtime static QDQ quantisation of `model` (already through quant_pre_process) into `out`: per-channel
    int8 weights, uint8 activations, calibrated on the offsets [1,K,512]; options: quantize_static's, on top."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{"offset": o} for o in calibration])

        def get_next(self):
            return next(self.feeds, None)

    kw = {"quant_format": QuantFormat.QDQ, "per_channel": True, "activation_type": QuantType.QUInt8,
          "weight_type": QuantType.QInt8, **options}
    quantize_static(str(model), str(out), Reader(), **kw)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="ONNX model (default: the k10 256² export in engines/)")
    p.add_argument("--calibration", type=int, default=24, help="calibration offsets (default 24)")
    p.add_argument("--held-out", type=int, default=8, help="offsets the LPIPS is measured on (default 8)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import tempfile

    import onnx
    import onnxruntime as ort
    import torch
    from backends import timed
    from fps import machine_info
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from live.assets import AssetStore
    from live.models.lpips import load_lpips

    model = args.model or next(iter(sorted(ENGINES.glob("synthesis-*-k10-s256-*.onnx"))), None)
    if model is None or not Path(model).is_file():
        log.error("no ONNX synthesis model: run `live demo --backend onnxruntime` once, or give --model")
        return 2
    rng = np.random.default_rng(0)
    calibration, held = offsets(args.calibration, rng), offsets(args.held_out, rng)

    def session(path):
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    def speed(s) -> tuple[float, float]:
        feeds = itertools.cycle([{"offset": o} for o in held])
        t = timed(lambda: s.run(None, next(feeds)), warmup=3, runs=args.runs)
        return t["p50_ms"], t["p95_ms"]

    lpips = load_lpips(AssetStore(progress=False))
    reference = session(model)
    ref_out = [reference.run(None, {"offset": o})[0] for o in held]
    p50, p95 = speed(reference)
    rows = [{"variant": "f32 (reference)", "p50_ms": p50, "p95_ms": p95, "lpips_mean": 0.0, "lpips_max": 0.0}]
    log.info("f32: %.1f / %.1f ms", p50, p95)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(model), str(pre), skip_symbolic_shape=True)
        convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
        for i, (name, options) in enumerate(variants(convs).items()):
            out = Path(tmp) / f"q{i}.onnx"
            quantise(pre, out, calibration, **options)
            s = session(out)
            d = [float(lpips(torch.from_numpy(s.run(None, {"offset": o})[0]), torch.from_numpy(r)))
                 for o, r in zip(held, ref_out, strict=True)]
            p50, p95 = speed(s)
            rows.append({"variant": name, "p50_ms": p50, "p95_ms": p95, "lpips_mean": round(float(np.mean(d)), 4),
                         "lpips_max": round(float(np.max(d)), 4)})
            log.info("%s: %.1f / %.1f ms, LPIPS vs f32 %.3f (max %.3f)", name, p50, p95, rows[-1]["lpips_mean"],
                     rows[-1]["lpips_max"])
    print(f"{'variant':<44}{'p50 ms':>8}{'p95 ms':>8}{'LPIPS':>8}{'max':>8}")
    for r in rows:
        print(f"{r['variant']:<44}{r['p50_ms']:>8.1f}{r['p95_ms']:>8.1f}{r['lpips_mean']:>8.3f}{r['lpips_max']:>8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": Path(model).name, "rows": rows, "machine": machine_info(),
                                               "onnxruntime": ort.__version__, "target_lpips": 0.03}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
