"""Identity files: one enrolled face, self-describing, safetensors (never pickle).

Tensors:
    styles         [1,23,512] float32   W+ latent the avatar keeps
    crop           [S,S,3] uint8 RGB    the aligned source face (small, for checks and previews)
    tune.<param>   float16              optional: pivotal tuning's deltas of the live network's parameters
                                        (live.tuning; `--tune`); metadata tuned_head names the head they go with
    head.weight    [12,C,1,1] float32   (files before pivotal tuning) a tuned 256² 1x1 head, read as a tuning
    head.bias      [1,12,1,1] float32
    photo          [N] uint8            optional: the source portrait around the face (JPEG bytes, quality 95; the
                                        region a frame can show, at most PHOTO_MAX_SIDE across the face's crop):
                                        what the avatar is pasted back into (live.compose)
    photo_quad     [4,2] float64        the FFHQ crop's corners in that photo's pixels
Metadata (strings): format, format_version, generator, generator_sha256, live_version, created,
source_sha256 (the portrait's bytes), quality, tuned, tuned_head, fidelity (JSON), settings (JSON).

Written to a temporary file and renamed, so an interrupted write never leaves a half file.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from live.tuning import Tuning, check_tuning

FORMAT = "live-identity"
FORMAT_VERSION = "1"
SUFFIX = ".identity"


class IdentityFileError(ValueError):
    """An identity file that cannot be used, with the reason and what to do."""


@dataclass
class Identity:
    styles: torch.Tensor  # [1,23,512] float32 W+
    crop: np.ndarray  # [S,S,3] uint8 RGB aligned source
    generator: str  # generator name
    generator_sha256: str  # the generator asset hash it was made for
    tuning: Tuning | None = None  # pivotal tuning (live.tuning) or None
    fidelity: dict = field(default_factory=dict)  # measured at enrollment (lpips, identity_distance, ...)
    meta: dict = field(default_factory=dict)  # source_sha256, quality, settings, live_version, created
    photo: np.ndarray | None = None  # [h,w,3] uint8 RGB the portrait around the face, or None (files enrolled before
    # the photo was kept, or with `--no-photo`)
    photo_quad: np.ndarray | None = None  # [4,2] float64 the FFHQ crop's corners in `photo`'s pixels

    def tensors(self) -> dict[str, torch.Tensor]:
        t = {"styles": self.styles.detach().float().contiguous(),
             "crop": torch.from_numpy(np.ascontiguousarray(self.crop, dtype=np.uint8))}
        if self.photo is not None:
            t["photo"] = torch.from_numpy(encode_photo(self.photo))
            t["photo_quad"] = torch.from_numpy(np.asarray(self.photo_quad, np.float64).reshape(4, 2).copy())
        if self.tuning is not None:
            t.update({k: v.detach().contiguous() for k, v in self.tuning.tensors().items()})
        return t


def encode_photo(photo: np.ndarray) -> np.ndarray:
    """[N] uint8 JPEG bytes (quality 95) of an [h,w,3] uint8 RGB photo."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise IdentityFileError(f"could not encode the portrait ({list(photo.shape)}) for the identity file")
    return data.reshape(-1)


def decode_photo(path: Path, data: torch.Tensor, quad: torch.Tensor | None, redo: str) -> tuple[np.ndarray, np.ndarray]:
    """The photo and its quad from an identity file's tensors, checked."""
    image = cv2.imdecode(data.numpy().astype(np.uint8, copy=False).reshape(-1), cv2.IMREAD_COLOR) \
        if data.ndim == 1 and data.numel() > 0 else None
    if image is None or quad is None or tuple(quad.shape) != (4, 2) or not torch.isfinite(quad).all():
        raise IdentityFileError(f"{path} has a photo that cannot be read or no crop corners for it (damaged): {redo}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), quad.double().numpy()


def save_identity(identity: Identity, path: Path | str) -> Path:
    """Write `identity` to `path` atomically (temp file in the same folder, then rename)."""
    from safetensors.torch import save_file

    from live import __version__

    path = Path(path).expanduser()
    if path.is_dir():
        raise IdentityFileError(f"{path} is a folder; give a file name such as {path / ('me' + SUFFIX)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: str(v) for k, v in identity.meta.items()}
    meta.update({
        "format": FORMAT, "format_version": FORMAT_VERSION, "generator": identity.generator,
        "generator_sha256": identity.generator_sha256, "fidelity": json.dumps(identity.fidelity),
        "tuned": "1" if identity.tuning is not None else "0",
    })
    if identity.tuning is not None:
        meta["tuned_head"] = identity.tuning.head
    meta.setdefault("live_version", __version__)
    meta.setdefault("created", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        save_file(identity.tensors(), tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


MAX_ABS = 1e3  # no style or head weight of a real identity comes near this (W+ values are within +-10 or so)


def check_head(path: Path, weight: torch.Tensor | None, bias: torch.Tensor | None, redo: str) -> None:
    """IdentityFileError unless the tuned head is [12,C,1,1] and [1,12,1,1] of finite, sane values, with C the
    shared 256² head's channels."""
    from live.models.early_exit import load_heads

    heads = load_heads()
    channels = heads[256][0].shape[1] if heads else None
    ok = weight is not None and bias is not None and weight.ndim == 4 and weight.shape[0] == 12 \
        and tuple(weight.shape[2:]) == (1, 1) and tuple(bias.shape) == (1, 12, 1, 1) \
        and channels in (None, weight.shape[1])
    if not ok:
        got = [None if t is None else list(t.shape) for t in (weight, bias)]
        raise IdentityFileError(f"{path} has a tuned head of shapes {got}, not [12,{channels or 'C'},1,1] and "
                                f"[1,12,1,1] (damaged, or made by another version): {redo}")
    if not (torch.isfinite(weight).all() and torch.isfinite(bias).all()) \
            or max(weight.abs().max(), bias.abs().max()) > MAX_ABS:
        raise IdentityFileError(f"{path} has a tuned head with values that are not finite or beyond +-{MAX_ABS:g} "
                                f"(damaged): {redo}")


def head_tuning(weight: torch.Tensor, bias: torch.Tensor) -> Tuning:
    """A tuned 1x1 head (files enrolled before pivotal tuning) as a tuning of the closed-form head."""
    from live.models.early_exit import load_heads

    shared_weight, shared_bias = load_heads()[256]
    return Tuning({"img_weight": (weight.float() - shared_weight).half(),
                   "img_bias": (bias.float() - shared_bias).half()}, "linear")


def load_identity(path: Path | str, generator_sha256: str | None = None) -> Identity:
    """Read and check an identity file; `generator_sha256` (when given) must match the file's."""
    from safetensors import SafetensorError, safe_open

    path = Path(path).expanduser()
    if not path.is_file():
        raise IdentityFileError(f"identity file {path} not found")
    redo = f"enroll the portrait again with `live enroll PORTRAIT -o {path.name}`"
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise IdentityFileError(f"{path} is not a readable identity file (truncated or corrupt: {exc}); "
                                f"{redo}") from None
    if meta.get("format") != FORMAT:
        raise IdentityFileError(f"{path} is a safetensors file but not a live identity file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise IdentityFileError(f"{path} has identity format {meta.get('format_version')!r}; this live reads "
                                f"{FORMAT_VERSION!r}: {redo}")
    if generator_sha256 is not None and meta.get("generator_sha256") != generator_sha256:
        raise IdentityFileError(
            f"{path} was made for another generator ({meta.get('generator')} {meta.get('generator_sha256', '?')[:12]}), "
            f"this install has {generator_sha256[:12]}: {redo}")
    styles, crop = tensors.get("styles"), tensors.get("crop")
    if styles is None or crop is None or styles.ndim != 3 or styles.shape[0] != 1 or crop.ndim != 3:
        raise IdentityFileError(f"{path} lacks its styles or crop tensors (damaged): {redo}")
    if styles.shape[2] != 512 or not torch.isfinite(styles).all() or styles.abs().max() > MAX_ABS:
        raise IdentityFileError(f"{path} holds non-finite or absurd styles {list(styles.shape)} (W+ vectors are 512 "
                                f"wide, within +-{MAX_ABS:g}; damaged): {redo}")
    tuning = Tuning.from_tensors(tensors, meta.get("tuned_head", "linear"))
    if tuning is not None:
        problem = check_tuning(tuning, MAX_ABS)
        if problem:
            raise IdentityFileError(f"{path} has a tuning that {problem} (damaged, or made by another version): "
                                    f"{redo}")
    elif "head.weight" in tensors or "head.bias" in tensors:
        head = (tensors.get("head.weight"), tensors.get("head.bias"))
        check_head(path, *head, redo)
        tuning = head_tuning(*head)
    photo = quad = None
    if "photo" in tensors:
        photo, quad = decode_photo(path, tensors["photo"], tensors.get("photo_quad"), redo)
    try:
        fidelity = json.loads(meta.get("fidelity", "{}"))
    except json.JSONDecodeError:
        fidelity = {}
    skip = {"format", "format_version", "generator", "generator_sha256", "fidelity", "tuned", "tuned_head"}
    return Identity(styles=styles.float(), crop=crop.numpy(), generator=meta.get("generator", ""),
                    generator_sha256=meta.get("generator_sha256", ""), tuning=tuning, fidelity=fidelity,
                    meta={k: v for k, v in meta.items() if k not in skip}, photo=photo, photo_quad=quad)
