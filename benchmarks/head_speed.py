"""The learned live head's cost: synthesis p50 through the closed-form and the learned head, per backend,
interleaved in one run (issue 24: within 1.15x at 256²); at 512² also the full network downsampled.

    python benchmarks/head_speed.py               # writes benchmarks/results/live-head-speed.json
    python benchmarks/head_speed.py --size 512    # writes benchmarks/results/live-head-speed-512.json
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fps import machine_info  # noqa: E402

from live.assets import AssetStore  # noqa: E402
from live.models.generator import load_mobilestylegan  # noqa: E402
from live.render import SynthesisNet, make_backend, seed_identity  # noqa: E402
from live.train.live_heads import machine  # noqa: E402

log = logging.getLogger("benchmarks.head_speed")
KINDS = ("torch", "onnxruntime", "openvino")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, choices=(256, 512), default=256, help="output side")
    size = p.parse_args(argv).size
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    gen = load_mobilestylegan(AssetStore(progress=False))
    ident = seed_identity(gen, 0)
    offset = {"offset": (np.random.RandomState(0).randn(1, 10, 512) * 0.3).astype(np.float32)}
    result = {"machine": machine_info() | {"cpu_flags": machine()}, "k": 10, "size": size, "runs": 25}
    heads = ("linear", "learned") + (("full",) if size > 256 else ())
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            try:
                backends = {h: make_backend(kind, SynthesisNet(gen, ident, 10, size, early_exit=h != "full",
                                                               learned_head=h == "learned"),
                                            gen, ident, engines_dir=Path(tmp)) for h in heads}
            except ImportError as exc:
                log.info("%s: not installed (%s)", kind, exc)
                continue
            times = {h: [] for h in backends}
            for run in range(30):
                for h, b in backends.items():
                    t0 = time.perf_counter()
                    b.run(offset)
                    if run >= 5:
                        times[h].append(time.perf_counter() - t0)
            row = {h: round(1000 * float(np.median(v)), 1) for h, v in times.items()}
            row["ratio"] = round(row["learned"] / row["linear"], 3)
            result[kind] = row
            log.info("%s: p50 closed-form %.1f ms, learned %.1f ms (x%.3f)%s", kind, row["linear"], row["learned"],
                     row["ratio"], f", full network {row['full']:.1f} ms" if "full" in row else "")
    name = "live-head-speed.json" if size == 256 else f"live-head-speed-{size}.json"
    out = Path(__file__).resolve().parent / "results" / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
