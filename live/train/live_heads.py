"""Distil the learned live heads (live.models.live_head) from the full generator.

    python -m live.train.live_heads                      # teacher renders, both heads, eval; minutes to an hour
    python -m live.train.live_heads --sizes 256 --steps 200

Three resumable phases, progress bars on stderr and a log (work dir `train.log`):
1. teacher: generated faces (training seeds from 10000, held-out seeds from 0) with the encoder's offsets applied
   (random expressions and head turns through the linear encoder, some faces style-mixed above the offset layers
   as inverted portraits are), rendered by the full network at 1024² and kept at 512² (float16, one file each);
2. train, per size: the 256² head starts as the closed-form one, the 512² head as the generator's last block at
   the training faces' mean style, narrowed (live.models.live_head); each is trained with L1 + LPIPS(VGG) against
   the teacher downsampled to its size (512²: on random 256² crops, the head run on the features' crop alone);
   the exit block's features are recomputed per batch; a checkpoint every CHECKPOINT_EVERY steps;
3. eval on the held-out faces: LPIPS and PSNR of the closed-form and the learned head against the teacher;
   writes live/models/live_heads.safetensors and .json (generator sha256, samples, steps, metrics, seconds).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from live.atomic import save_atomic
from live.models.early_exit import EXIT_BLOCK, TRAIN_SEEDS, psnr
from live.models.live_head import (
    HEADS_PATH,
    WIDTH,
    LastBlockHead,
    LiveHead,
    head_tensors,
)
from live.models.mobilestylegan import bands_to_image

log = logging.getLogger(__name__)

TRUNCATION = 0.7
TEACHER_SIDE = 512  # teacher renders are kept at this side (the 1024² output area-averaged)
CHECKPOINT_EVERY = 25
LINEAR_LR_SCALE = 0.05  # the learning rate of the head's closed-form part, relative to the branch's
CROP = 256  # LPIPS for the 512² head is taken on random crops of this side (4x cheaper than the whole face)
MARGIN = 4  # features around a crop the 512² head reads (it sees 2 pixels of 512² around each output pixel)
LR = {256: 2e-3, 512: 1e-3}  # Adam's rate per head (the 512² head starts from the generator's own weights)


def live_styles(gen, encoder, seed: int) -> torch.Tensor:
    """[1,23,512] W+ styles like those live renders: a generated face, maybe style-mixed above the offset layers
    (inverted portraits are not one w), plus the linear encoder's offset for a random expression and head turn."""
    from live.models.generator import broadcast_styles, z_from_seed

    rs = np.random.RandomState(seed)
    styles = broadcast_styles(gen.mapping(z_from_seed(seed), TRUNCATION), gen.num_layers).clone()
    if rs.rand() < 0.5:
        start = rs.randint(encoder.k, gen.num_layers - 4)
        other = gen.mapping(z_from_seed(seed + 777_777), TRUNCATION)
        mix = rs.uniform(0.2, 0.8)
        styles[:, start:] = styles[:, start:] * (1 - mix) + other[:, None] * mix
    from live.tuning import random_change

    delta = random_change(rs, 6, 1.0) * rs.uniform(0.0, 1.2)  # yaw, pitch up to +-30 degrees, scaled
    styles[:, :encoder.k] += torch.from_numpy(encoder(delta))
    return styles


def cpu_flags() -> tuple[str, list[str]]:
    """(CPU model, the vector flags that decide speed: avx2 fma avx512f avx512_bf16 avx512_vnni amx_bf16)."""
    model, flags = platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == platform.machine():
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16") if f in flags]


def machine() -> str:
    """CPU model, cores and the vector flags that decide speed (for the metadata beside the timings)."""
    model, shown = cpu_flags()
    return f"{model}, {os.cpu_count()} CPUs, {' '.join(shown)}"


class Teacher:
    """The cached teacher renders: styles [1,23,512] and the full network's face at TEACHER_SIDE, per seed."""

    def __init__(self, gen, encoder, work: Path):
        self.gen, self.encoder, self.dir = gen, encoder, work / "teacher"
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, seed: int) -> Path:
        return self.dir / f"{seed}.npz"

    @torch.inference_mode()
    def make(self, seeds: list[int], desc: str) -> None:
        from tqdm import tqdm

        todo = [s for s in seeds if not self.path(s).is_file()]
        for seed in tqdm(todo, desc=desc, unit="face"):
            styles = live_styles(self.gen, self.encoder, seed)
            full = self.gen.synthesis(styles)
            image = F.avg_pool2d(full, full.shape[-1] // TEACHER_SIDE)[0].numpy().astype(np.float16)

            def write(tmp, styles=styles, image=image):
                with open(tmp, "wb") as f:
                    np.savez(f, styles=styles[0].numpy(), image=image)

            save_atomic(self.path(seed), write)
        log.info("%s: %d faces (%d new)", desc, len(seeds), len(todo))

    def styles(self, seeds) -> torch.Tensor:
        """[N,23,512]: the faces' styles alone."""
        out = []
        for seed in seeds:
            with np.load(self.path(seed)) as z:
                out.append(torch.from_numpy(z["styles"]))
        return torch.stack(out)

    def load(self, seeds) -> tuple[torch.Tensor, torch.Tensor]:
        """(styles [N,23,512], teacher images [N,3,512,512] float32)."""
        styles, images = [], []
        for seed in seeds:
            with np.load(self.path(seed)) as z:
                styles.append(torch.from_numpy(z["styles"]))
                images.append(torch.from_numpy(z["image"].astype(np.float32)))
        return torch.stack(styles), torch.stack(images)


@torch.inference_mode()
def features(gen, styles: torch.Tensor, size: int) -> torch.Tensor:
    s = gen.synthesis_net
    return s.render(s.modulations(styles), styles.shape[0], features_of=EXIT_BLOCK[size])


def target(images: torch.Tensor, size: int) -> torch.Tensor:
    return images if size == TEACHER_SIDE else F.avg_pool2d(images, TEACHER_SIDE // size)


def new_head(gen, teacher: Teacher, size: int, seeds: list[int]) -> tuple[LiveHead | LastBlockHead, list[dict]]:
    """The head for `size` before training and its optimiser's parameter groups ("scale": of the learning rate)."""
    if size == 512:
        head = LastBlockHead.from_block(gen.synthesis_net, teacher.styles(seeds), WIDTH[size])
        return head, [{"params": list(head.parameters()), "scale": 1.0}]
    from live.models.early_exit import load_heads

    weight, bias = load_heads()[size]
    head = LiveHead.from_linear(weight, bias, WIDTH[size])
    branch = [p for name, p in head.named_parameters() if not name.startswith("linear.")]
    # The closed-form part moves slowly (at the full rate it left its optimum and the loss doubled at once).
    return head, [{"params": branch, "scale": 1.0},
                  {"params": list(head.linear.parameters()), "scale": LINEAR_LR_SCALE}]


def crop(feats: torch.Tensor, truth: torch.Tensor, rs: np.random.RandomState):
    """A random CROP² window of the 512² faces: (the features it reads, where they start, the teacher's window,
    where the window sits in the head's output)."""
    side = CROP // 2  # in feature pixels
    y, x = rs.randint(0, feats.shape[-1] - side + 1, 2)
    fy, fx = max(0, y - MARGIN), max(0, x - MARGIN)
    window = feats[..., fy:y + side + MARGIN, fx:x + side + MARGIN]
    return window, (fy, fx), truth[..., 2 * y:2 * y + CROP, 2 * x:2 * x + CROP], (2 * (y - fy), 2 * (x - fx))


def train(gen, lpips, teacher: Teacher, size: int, seeds: list[int], steps: int, batch: int, lr: float,
          work: Path, bf16: bool) -> tuple[LiveHead | LastBlockHead, dict]:
    """Train (or resume) the head for `size`; returns its training record."""
    from tqdm import tqdm

    ckpt = work / f"head{size}.pt"
    head, groups = new_head(gen, teacher, size, seeds)
    opt = torch.optim.Adam(groups, lr=lr)
    record = {"step": 0, "loss": [], "seconds": 0.0}
    state = torch.load(ckpt, weights_only=False) if ckpt.is_file() else None
    made = state.get("design", "LiveHead") if state is not None else None  # checkpoints before 2026-12-07: LiveHead
    if made is not None and made != type(head).__name__:
        log.info("head %d: the checkpoint in %s is of another design (%s); starting again", size, ckpt, made)
    elif state is not None:
        head.load_state_dict(state["head"])
        opt.load_state_dict(state["opt"])
        record = state["record"]
        log.info("head %d: resuming at step %d", size, record["step"])
    bar = tqdm(total=steps, initial=record["step"], desc=f"head {size}²", unit="step")
    t0 = time.time() - record["seconds"]
    while record["step"] < steps:
        step = record["step"]
        rs = np.random.RandomState(step + 1000 * size)
        pick = [seeds[i] for i in rs.choice(len(seeds), batch, replace=False)]
        styles, images = teacher.load(pick)
        feats = features(gen, styles, size).clone()
        truth = target(images, size)
        for group in opt.param_groups:  # cosine decay to a tenth
            group["lr"] = group["scale"] * lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        if size > CROP:
            window, at, truth, (y, x) = crop(feats, truth, rs)
            image = head.image(window, at)[..., y:y + CROP, x:x + CROP]
        else:
            image = head.image(feats)
        l1 = (image - truth).abs().mean()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # VGG: 2x faster where bf16 is native
            perceptual = lpips(image.clamp(-1, 1), truth.clamp(-1, 1)).float().mean()
        loss = l1 + perceptual
        opt.zero_grad()
        loss.backward()
        opt.step()
        record["step"] = step + 1
        record["loss"].append([round(float(l1.detach()), 5), round(float(perceptual.detach()), 5)])
        bar.update(1)
        bar.set_postfix(l1=f"{record['loss'][-1][0]:.4f}", lpips=f"{record['loss'][-1][1]:.4f}")
        if record["step"] % 10 == 0:
            recent = np.mean(record["loss"][-10:], axis=0)
            log.debug("head %d step %d/%d: L1 %.4f LPIPS %.4f", size, record["step"], steps, *recent)
        if record["step"] % CHECKPOINT_EVERY == 0 or record["step"] == steps:
            record["seconds"] = round(time.time() - t0, 1)
            state = {"head": head.state_dict(), "opt": opt.state_dict(), "record": record,
                     "design": type(head).__name__}
            save_atomic(ckpt, lambda tmp, state=state: torch.save(state, tmp))
    bar.close()
    return head.eval().requires_grad_(False), record


@torch.inference_mode()
def evaluate(gen, lpips, teacher: Teacher, size: int, head: LiveHead | LastBlockHead, seeds: list[int]) -> dict:
    """LPIPS (at the head's size; the 512² head also at 256²) and PSNR of the closed-form and learned heads."""
    from live.models.early_exit import load_heads

    weight, bias = load_heads()[size]
    scores = {"linear": [], "learned": []}
    for seed in seeds:
        styles, images = teacher.load([seed])
        feats = features(gen, styles, size)
        truth = target(images, size).clamp(-1, 1)
        for name, image in (("linear", bands_to_image(F.conv2d(feats, weight) + bias)), ("learned", head.image(feats))):
            image = image.clamp(-1, 1)
            row = {"lpips": float(lpips(image, truth)), "psnr_db": psnr(image, truth)}
            if size > 256:
                row["lpips_at_256"] = float(lpips(F.avg_pool2d(image, size // 256), F.avg_pool2d(truth, size // 256)))
            scores[name].append(row)
    out = {}
    for name, rows in scores.items():
        out[name] = {key: {"mean": round(float(np.mean([r[key] for r in rows])), 4),
                           "worst": round(float(max(r[key] for r in rows) if key.startswith("lpips")
                                                else min(r[key] for r in rows)), 4)} for key in rows[0]}
    log.info("head %d on %d held-out faces: LPIPS closed-form %.3f -> learned %.3f", size, len(seeds),
             out["linear"]["lpips"]["mean"], out["learned"]["lpips"]["mean"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=384, help="training faces (teacher renders, ~1.2 s each)")
    p.add_argument("--eval", type=int, default=16, help="held-out faces the metrics are measured on")
    p.add_argument("--steps", type=int, default=600, help="training steps per head")
    p.add_argument("--batch", type=int, default=4, help="faces per step")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate, cosine decay to a tenth (default: 2e-3 for 256², 1e-3 for 512²)")
    p.add_argument("--sizes", default="256,512", help="heads to train (comma-separated: 256, 512)")
    p.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                   help="the LPIPS loss in bf16 (auto: where the CPU has native bf16, 2x faster there)")
    p.add_argument("--work", type=Path, default=None,
                   help="teacher renders and checkpoints (default: <cache>/train/live_heads); resumes from it")
    p.add_argument("--out", type=Path, default=HEADS_PATH, help="where to write the heads")
    args = p.parse_args(argv)
    sizes = [int(v) for v in args.sizes.split(",")]
    if any(s not in EXIT_BLOCK for s in sizes):
        p.error(f"--sizes: choose from {', '.join(map(str, EXIT_BLOCK))}")
    from live.assets import AssetStore
    from live.backends.torch_backend import native_bf16
    from live.models.encoder import LinearEncoder
    from live.models.generator import load_mobilestylegan
    from live.models.live_head import load_live_heads
    from live.models.lpips import load_lpips

    bf16 = native_bf16() if args.bf16 == "auto" else args.bf16 == "on"
    store = AssetStore()
    work = args.work or Path(store.cache_dir).parent / "train" / "live_heads"
    work.mkdir(parents=True, exist_ok=True)
    to_file, to_screen = logging.FileHandler(work / "train.log"), logging.StreamHandler()
    to_file.setLevel(logging.DEBUG)
    to_screen.setLevel(logging.INFO)
    logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(message)s", handlers=[to_file, to_screen])
    torch.manual_seed(0)
    t0 = time.time()
    gen = load_mobilestylegan(store).requires_grad_(False)
    encoder = LinearEncoder.load(generator_sha256=gen.source_sha256)
    lpips = load_lpips(store)
    teacher = Teacher(gen, encoder, work)
    train_seeds = list(TRAIN_SEEDS[:args.samples])
    eval_seeds = list(range(args.eval))
    teacher.make(train_seeds, "teacher (training faces)")
    teacher.make(eval_seeds, "teacher (held-out faces)")
    heads = load_live_heads(gen.source_sha256, args.out) or {}  # keep a head not retrained this time
    meta = json.loads(args.out.with_suffix(".json").read_text()) if args.out.with_suffix(".json").is_file() else {}
    meta.setdefault("heads", {})
    for size in sizes:
        lr = args.lr or LR[size]
        head, record = train(gen, lpips, teacher, size, train_seeds, args.steps, args.batch, lr, work, bf16)
        heads[size] = head
        meta["heads"][str(size)] = {
            "design": type(head).__name__, "exit_block": EXIT_BLOCK[size], "width": WIDTH[size],
            "samples": args.samples, "steps": args.steps,
            "batch": args.batch, "lr": lr, "lpips_bf16": bf16, "train_seconds": record["seconds"],
            "final_loss_l1_lpips": np.round(np.mean(record["loss"][-25:], axis=0), 4).tolist(),
            "eval": evaluate(gen, lpips, teacher, size, head, eval_seeds)}
    meta.update({"generator_sha256": gen.source_sha256, "train_seeds": "10000..", "eval_seeds": f"0..{args.eval - 1}",
                 "loss": "L1 + LPIPS(VGG16) against the full network's output area-averaged (512: 256² crops)",
                 "eval_note": "lpips at the head's size, whole faces; lpips_at_256: both downsampled to 256²",
                 "date": datetime.date.today().isoformat(), "torch": torch.__version__,
                 "machine": machine(), "seconds_this_run": round(time.time() - t0)})
    from safetensors.torch import save_file

    save_atomic(args.out, lambda tmp: save_file(head_tensors(heads), tmp,
                                                 metadata={"generator_sha256": gen.source_sha256}))
    save_atomic(args.out.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2) + "\n"))
    log.info("wrote %s and its .json (%.0f s)", args.out, time.time() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
