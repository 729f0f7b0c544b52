"""Synthesis speed and quality per backend, against the OpenVINO reference on the original IR, in one run.

    python benchmarks/backends.py                       # 1024 and 256, all backends available here
    python benchmarks/backends.py --sizes 256 --backends torch,openvino --json out.json

Rows: the reference (OpenVINO running MobileStyleGAN's own IR, f32, one w on all layers); the
unspecialised torch network; then the fixed-identity network (K offset layers, identity folded in) per
backend. p50/p95 over `--runs` timed calls after `--warmup` untimed ones (compilation happens there).
Quality: PSNR (dB) of each row against the f32 torch output of the same network at 1024, downsampled
by area for smaller sizes (so early-exit and bf16 costs show). Not LPIPS: that arrives with enrollment.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fps import machine_info  # noqa: E402

from live.assets import AssetStore  # noqa: E402
from live.backends.base import BackendError  # noqa: E402
from live.models.early_exit import psnr  # noqa: E402
from live.models.generator import IR_ASSETS, load_mobilestylegan  # noqa: E402
from live.render import SynthesisNet, make_backend, seed_identity  # noqa: E402

log = logging.getLogger("benchmarks.synthesis")


def timed(fn, warmup: int, runs: int) -> dict:
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "runs": runs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1024,256")
    p.add_argument("--backends", default="torch,torch-compile,torch-compile-bf16,onnxruntime,openvino")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)

    store = AssetStore(progress=sys.stderr.isatty())
    gen = load_mobilestylegan(store)
    identity = seed_identity(gen, args.seed)
    offset = np.zeros((1, args.k, 512), np.float32)
    rows = []
    with torch.inference_mode():
        truth = gen.synthesis(identity)  # [1,3,1024,1024] f32

    def add(name: str, size: int, fn, output=None) -> None:
        r = timed(fn, args.warmup, args.runs)
        out = output() if output else None
        ref = F.avg_pool2d(truth, 1024 // size) if size < 1024 else truth
        quality = round(psnr(torch.as_tensor(out).float(), ref), 2) if out is not None else None
        rows.append({"row": name, "size": size, **r, "psnr_db": quality})
        log.info("%-34s %5d  p50 %8.1f ms  p95 %8.1f ms  PSNR %s", name, size, r["p50_ms"], r["p95_ms"], quality)

    try:
        import openvino as ov

        core = ov.Core()
        paths = {n: str(store.resolve(n)) for n in IR_ASSETS}
        ref_net = core.compile_model(core.read_model(paths[IR_ASSETS[2]], paths[IR_ASSETS[3]]), "CPU",
                                     {"INFERENCE_PRECISION_HINT": "f32"})
        w = identity[:, 0].numpy()
        add("reference: openvino IR f32", 1024, lambda: ref_net(w), lambda: ref_net(w)[0])
    except ImportError:
        log.warning("openvino not installed: no reference row (pip install 'live[openvino]')")
    with torch.inference_mode():
        add("torch unspecialised", 1024, lambda: gen.synthesis(identity), lambda: gen.synthesis(identity))

    with tempfile.TemporaryDirectory(prefix="live-synth-") as engines:
        for size in [int(s) for s in args.sizes.split(",")]:
            net = SynthesisNet(gen, identity, args.k, size)
            for kind in [b.strip() for b in args.backends.split(",") if b.strip()]:
                try:
                    backend = make_backend(kind, net, gen, identity, engines_dir=Path(engines))
                except BackendError as exc:
                    log.warning("%s: skipped (%s)", kind, exc)
                    continue
                label = f"{kind} K={args.k}" + (" early-exit" if net.early_exit else "")
                add(label, size, lambda b=backend: b.run({"offset": offset}),
                    lambda b=backend: b.run({"offset": offset})["image"])
    reference = next((r for r in rows if r["row"].startswith("reference")), None)
    if reference:
        for r in rows:
            r["vs_reference"] = round(r["p50_ms"] / reference["p50_ms"], 3)
    result = {"rows": rows, "k": args.k, "seed": args.seed, "machine": machine_info(),
              "threads": torch.get_num_threads()}
    print(f"{'row':<36}{'size':>6}{'p50 ms':>10}{'p95 ms':>10}{'x ref':>8}{'PSNR dB':>9}")
    for r in rows:
        print(f"{r['row']:<36}{r['size']:>6}{r['p50_ms']:>10.1f}{r['p95_ms']:>10.1f}"
              f"{r.get('vs_reference', float('nan')):>8.2f}{(r['psnr_db'] or float('inf')):>9.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
