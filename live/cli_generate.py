"""`live generate`: one face from the generator, by seed (and style mixing), as an image file."""

from __future__ import annotations

import argparse


def cmd_generate(args: argparse.Namespace, store) -> int:
    import cv2
    import torch

    from live.models.generator import load_mobilestylegan
    from live.stages.file import check_output_path, guard_outputs, partial_path
    from live.render import seed_identity, to_uint8

    out = check_output_path(args.output, {".png", ".jpg", ".jpeg", ".webp", ".bmp"})
    if not 0.0 <= args.truncation <= 2.0:
        raise ValueError(f"--truncation must be between 0 and 2, got {args.truncation}")
    mix = None
    if args.layers_from:
        seed2, sep, k = args.layers_from.partition(":")
        if not sep or not seed2.strip().isdigit() or not k.strip().isdigit():
            raise ValueError(f"--layers-from wants SEED2:K (e.g. 7:8), got {args.layers_from!r}")
        mix = (int(seed2), int(k))
    guard_outputs([out], [], args.overwrite)  # after the options: each mistake is said in turn
    generator = load_mobilestylegan(store)
    if mix is not None and not 0 <= mix[1] <= generator.num_layers:
        raise ValueError(f"K in --layers-from must be 0..{generator.num_layers}, got {mix[1]}")
    styles = seed_identity(generator, args.seed, args.truncation)
    if mix is not None:
        styles[:, :mix[1]] = seed_identity(generator, mix[0], args.truncation)[:, :mix[1]]
    with torch.inference_mode():
        image = generator.synthesis(styles)
        if args.size != image.shape[-1]:
            image = torch.nn.functional.avg_pool2d(image, image.shape[-1] // args.size)
    rgb = to_uint8(image.numpy())
    tmp = partial_path(out)
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise ValueError(f"could not write {out}")
    tmp.replace(out)
    print(f"wrote {out} ({args.size}x{args.size}, seed {args.seed}, truncation {args.truncation}"
          + (f", first {mix[1]} layers from seed {mix[0]}" if mix else "") + ")")
    return 0
