"""The scripted demo's face mesh: MediaPipe's 478 landmarks on a real face at rest.

    python -m live.train.demo_mesh          # a second; writes live/models/demo_mesh.json

`live demo` has no camera: its driver is a script of blendshapes and head angles (live.demo). The warp (issue 28)
moves the avatar's face points by the driver's landmark motion, so the script also needs a face mesh to move: this
is matplotlib's grace_hopper.jpg (a real portrait that the package ships) as the face landmarker reads it, in
MediaPipe's normalised image coordinates, with the image's size to turn them into pixels. live.demo moves its lips
and lids for the script's pout, lip press and squint.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
from pathlib import Path

import numpy as np

from live.atomic import save_text_atomic
from live.models.demo_mesh import DEMO_MESH_PATH

log = logging.getLogger("live.train.demo_mesh")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=DEMO_MESH_PATH, help="where to write it (default: %(default)s)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from live.assets import AssetStore, sha256_file
    from live.landmarker import faces_in_image
    from live.samples import grace_hopper

    image = grace_hopper()
    model = AssetStore(progress=False).resolve("face_landmarker")
    faces = faces_in_image(model, image)
    if not faces:
        log.error("the face landmarker found no face on grace_hopper.jpg")
        return 1
    landmarks = np.round(np.asarray(faces[0].landmarks, np.float64), 5)
    h, w = image.shape[:2]
    record = {
        "source": "matplotlib sample data grace_hopper.jpg",
        "landmarker_sha256": sha256_file(model),
        "image_size": [w, h],
        "made": datetime.date.today().isoformat(),
        "landmarks": landmarks.tolist(),
    }
    save_text_atomic(args.out, json.dumps(record, separators=(",", ":")) + "\n")
    log.info("wrote %s: %d landmarks of a %dx%d image", args.out, len(landmarks), w, h)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
