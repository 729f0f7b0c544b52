"""The learned live head's cost: 256² synthesis p50 through the closed-form and the learned head, per backend,
interleaved in one run (issue 24: within 1.15x).

    python benchmarks/head_speed.py          # writes benchmarks/results/live-head-speed.json
"""

from __future__ import annotations

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


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    gen = load_mobilestylegan(AssetStore(progress=False))
    ident = seed_identity(gen, 0)
    offset = {"offset": (np.random.RandomState(0).randn(1, 10, 512) * 0.3).astype(np.float32)}
    result = {"machine": machine_info() | {"cpu_flags": machine()}, "k": 10, "size": 256, "runs": 25}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            try:
                backends = {h: make_backend(kind, SynthesisNet(gen, ident, 10, 256, learned_head=h == "learned"), gen,
                                            ident, engines_dir=Path(tmp)) for h in ("linear", "learned")}
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
            log.info("%s: p50 closed-form %.1f ms, learned %.1f ms (x%.3f)", kind, row["linear"], row["learned"],
                     row["ratio"])
    out = Path(__file__).resolve().parent / "results" / "live-head-speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
