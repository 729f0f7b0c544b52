"""How fast the live pipeline can get on two AVX2 cores: f32 against int8 everywhere (the lossiest, fastest path).

    python benchmarks/avx2_bound.py --input ../shared/data/driving/d3.mp4 --json benchmarks/results/avx2-bound.json

A probe for issue 26, not a backend. On an AVX-512 machine it measures the AVX2 case through the ISA cap OpenVINO's
oneDNN honours (ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2 for torch) and shows which kernels ran (the
convolutions' primitive types from OpenVINO's compiled graph). For the 256² network of identity seed 0 (k = 10,
the default head) it times, each in its own process so the cap applies from the start:
- synthesis alone, OpenVINO, f32 and int8 (ONNX Runtime static QDQ quantisation of every op, per-channel int8
  weights, min-max calibration on 24 encoder offsets: benchmarks/int8_probe.py), on 1 and 2 threads;
- the live pipeline (tracking, encoder, synthesis; benchmarks/fps.py --realtime on --input) with each model.
int8 everywhere costs LPIPS ~0.27 against f32 (printed here on 8 held-out offsets; issue 26 allows 0.03): if even
it misses 20 fps, no quantisation will reach it. Results and what they mean: benchmarks/SPEED.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
log = logging.getLogger("benchmarks.avx2_bound")
CAPS = {"native": {}, "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}

# Run in a child process (the cap must be set before OpenVINO loads): p50 ms and the convolutions' kernels.
TIME_CHILD = """
import collections, json, sys, time
import numpy as np
import openvino as ov
path, threads = sys.argv[1], int(sys.argv[2])
model = ov.Core().compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
req = model.create_infer_request()
x = (np.random.default_rng(0).standard_normal((1, 10, 512)) * 0.3).astype(np.float32)
for _ in range(3):
    req.infer({0: x})
times = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    req.infer({0: x})
    times.append((time.perf_counter() - t) * 1000)
kernels = collections.Counter()
for op in model.get_runtime_model().get_ops():
    rt = op.get_rt_info()
    if "layerType" in rt and rt["layerType"].astype(str) == "Convolution":
        kernels[rt["primitiveType"].astype(str)] += 1
print(json.dumps({"p50_ms": round(float(np.median(times)), 1), "kernels": dict(kernels)}))
"""


def f32_model(engines: Path) -> Path:
    """The f32 ONNX export fps.py's openvino run uses for identity seed 0 (exported into `engines` if missing)."""
    from live.assets import AssetStore
    from live.avatar import load_avatar
    from live.config import Config
    from live.render import SynthesisNet, export_onnx, onnx_name
    from live.stages import learned_head

    cfg = Config()
    avatar = load_avatar(cfg, AssetStore(progress=sys.stderr.isatty()), fit=True)
    net = SynthesisNet(avatar.generator, avatar.styles, avatar.k, cfg.synthesis.size, cfg.synthesis.early_exit,
                       tuning=avatar.tuning, learned_head=learned_head(cfg, avatar))
    path = engines / onnx_name(avatar.generator, avatar.styles, net.k, net.size, net.head_tag, net.tuning)
    if not path.exists():
        log.info("exporting the synthesis network to %s", path)
        export_onnx(net, path)
    return path


def quantise(model: Path, out: Path) -> float:
    """int8 everywhere (QDQ, min-max) of `model` into `out`; returns mean LPIPS(int8, f32) on 8 held-out offsets."""
    import onnxruntime as ort
    import torch
    from int8_probe import offsets
    from int8_probe import quantise as quantise_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from live.assets import AssetStore
    from live.models.lpips import load_lpips

    rng = np.random.default_rng(0)
    calibration, held = offsets(24, rng), offsets(8, rng)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(model), str(pre), skip_symbolic_shape=True)
        quantise_static(pre, out, calibration)
    f32, int8 = (ort.InferenceSession(str(m), providers=["CPUExecutionProvider"]) for m in (model, out))
    lpips = load_lpips(AssetStore(progress=False))
    return float(np.mean([float(lpips(torch.from_numpy(int8.run(None, {"offset": o})[0]),
                                      torch.from_numpy(f32.run(None, {"offset": o})[0]))) for o in held]))


def child(args: list[str], cap: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, **CAPS[cap]}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", help="clip the pipeline runs on (default: fps.py's own)")
    p.add_argument("--frames", type=int, default=300, help="pipeline frames per run (default 300)")
    p.add_argument("--runs", type=int, default=15, help="timed runs of synthesis alone (default 15)")
    p.add_argument("--caps", default="native,avx2", help="ISA caps to run under: native, avx2 (default both)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    caps = [c.strip() for c in args.caps.split(",") if c.strip()]
    if unknown := [c for c in caps if c not in CAPS]:
        p.error(f"unknown cap {unknown[0]!r}: choose from {', '.join(CAPS)}")
    from fps import machine_info

    from live.render import ENGINES_DIR

    rows, alone = [], []
    with tempfile.TemporaryDirectory(prefix="live-avx2-") as tmp:
        model = f32_model(ENGINES_DIR)
        int8_dir = Path(tmp) / "engines"
        int8_dir.mkdir()
        log.info("quantising %s (a minute or two)", model.name)
        lpips = quantise(model, int8_dir / model.name)
        log.info("int8 everywhere: LPIPS %.3f against f32", lpips)
        for cap in caps:
            for precision, path, engines in (("f32", model, ENGINES_DIR), ("int8", int8_dir / model.name, int8_dir)):
                for threads in (1, 2):
                    r = child(["-c", TIME_CHILD, str(path), str(threads), str(args.runs)], cap, 600)
                    if r.returncode != 0:
                        log.error("timing %s under %s failed:\n%s", precision, cap, r.stderr[-2000:])
                        return 1
                    alone.append({"cap": cap, "precision": precision, "threads": threads, **json.loads(r.stdout)})
                    log.info("%s", alone[-1])
                out = Path(tmp) / f"fps-{cap}-{precision}.json"
                cmd = [str(HERE / "fps.py"), "--stages", "tracking,encoder,synthesis", "--backends", "openvino",
                       "--realtime", "--frames", str(args.frames), "--engines", str(engines), "--json", str(out)]
                r = child(cmd + (["--input", args.input] if args.input else []), cap, 900)
                if r.returncode != 0:
                    log.error("fps.py under %s with %s failed:\n%s", cap, precision, r.stderr[-2000:])
                    return 1
                run = json.loads(out.read_text())
                stages = run["stages"]
                rows.append({"cap": cap, "precision": precision, "fps": run["fps"],
                             "latency_p95_ms": run["latency_ms"]["p95"],
                             "tracking_p50_ms": stages["tracking"]["p50_ms"],
                             "synthesis_p50_ms": stages["synthesis/openvino"]["p50_ms"]})
                log.info("%s", rows[-1])
    print(f"int8 everywhere: LPIPS {lpips:.3f} against f32 (issue 26 allows 0.03)")
    print(f"{'cap':<8}{'model':<6}{'1 thread ms':>12}{'2 threads ms':>13}  convolution kernels")
    for cap in caps:
        for precision in ("f32", "int8"):
            one, two = (next(a for a in alone if (a["cap"], a["precision"], a["threads"]) == (cap, precision, t))
                        for t in (1, 2))
            kinds = ", ".join(f"{k} x{n}" for k, n in sorted(two["kernels"].items()))
            print(f"{cap:<8}{precision:<6}{one['p50_ms']:>12.1f}{two['p50_ms']:>13.1f}  {kinds}")
    print(f"{'cap':<8}{'model':<6}{'fps':>7}{'p95 ms':>8}{'tracking':>10}{'synthesis':>11}   (pipeline, p50 ms)")
    for r in rows:
        print(f"{r['cap']:<8}{r['precision']:<6}{r['fps']:>7.1f}{r['latency_p95_ms']:>8.1f}{r['tracking_p50_ms']:>10.1f}"
              f"{r['synthesis_p50_ms']:>11.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": model.name, "int8_lpips_vs_f32": round(lpips, 4),
                                               "synthesis_alone": alone, "pipeline": rows, "caps": CAPS,
                                               "input": args.input, "machine": machine_info()}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
