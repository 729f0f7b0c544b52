"""The 512² (or 256²) live view of enrolled portraits against the full network's own picture, head by head.

    python benchmarks/head_portraits.py ~/.cache/live/identities/*.identity --json results/head-portraits-512.json

The learned heads are distilled and judged on generated faces (live/models/live_heads.json); an inverted portrait's
styles lie elsewhere, so this scores each identity's view at rest (untuned: --size 512 renders untuned) through the
closed-form head, the learned head and, with --heads, another learned-heads file, by LPIPS (VGG16) to the full
network's 1024² output area-averaged. Identities with the same styles are scored once.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fps import machine_info

from live.assets import AssetStore
from live.identity_file import load_identity
from live.models.early_exit import EXIT_BLOCK, load_heads
from live.models.generator import load_mobilestylegan
from live.models.live_head import load_live_heads
from live.models.lpips import load_lpips
from live.models.specialize import FixedIdentitySynthesis
from live.render import identity_hash

log = logging.getLogger("benchmarks.head_portraits")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("identities", nargs="+", type=Path, help="identity files from `live enroll`")
    p.add_argument("--size", type=int, choices=(256, 512), default=512)
    p.add_argument("--heads", type=Path, help="another learned-heads file to score beside the committed one")
    p.add_argument("--json", type=Path, help="write the scores here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    store = AssetStore(progress=False)
    gen = load_mobilestylegan(store)
    lpips = load_lpips(store)
    s, size = gen.synthesis_net, args.size
    weight, bias = load_heads()[size]
    heads = {"closed-form": (EXIT_BLOCK[size], weight, bias),
             "learned": (EXIT_BLOCK[size], load_live_heads(gen.source_sha256)[size])}
    if args.heads:
        heads["other"] = (EXIT_BLOCK[size], load_live_heads(gen.source_sha256, args.heads)[size])
    rows, seen = [], set()
    for path in args.identities:
        styles = load_identity(path, gen.source_sha256).styles
        if identity_hash(styles) in seen:
            continue
        seen.add(identity_hash(styles))
        with torch.inference_mode():
            truth = F.avg_pool2d(gen.synthesis(styles), 1024 // size).clamp(-1, 1)
            row = {"identity": path.name}
            for name, head in heads.items():
                view = FixedIdentitySynthesis(s, styles, 0, head=head)(torch.zeros(1, 0, 512)).clamp(-1, 1)
                row[name] = round(float(lpips(view, truth)), 4)
        rows.append(row)
        log.info("%s: %s", path.name, ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "identity"))
    summary = {name: {"mean": round(float(np.mean([r[name] for r in rows])), 4),
                      "worst": round(float(np.max([r[name] for r in rows])), 4)} for name in heads}
    log.info("%d identities, LPIPS to the full network at %d²: %s", len(rows), size,
             ", ".join(f"{k} {v['mean']:.3f} (worst {v['worst']:.3f})" for k, v in summary.items()))
    if args.json:
        result = {"size": size, "identities": rows, "summary": summary, "machine": machine_info()}
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
