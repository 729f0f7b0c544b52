"""Encoder files: safetensors weights and a PATH.json of metadata beside them, written then renamed."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np


def write_tensors(path: Path, tensors: dict[str, np.ndarray], meta: dict, header: dict[str, str]) -> None:
    """The tensors (safetensors, `header` as its string metadata) and PATH.json, each written then renamed."""
    from safetensors.numpy import save_file

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".encoder.", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, tmp, metadata=header)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".encoder.", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, path.with_suffix(".json"))


def read_tensors(path: Path, generator_sha256: str | None, script: str) \
        -> tuple[dict[str, np.ndarray], dict, dict[str, str]]:
    """(tensors, PATH.json metadata, safetensors header) of an encoder file, checked against the generator;
    errors say which script makes the file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no encoder weights at {path}: run `python -m live.train.{script}`")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"encoder weights {path} are unreadable ({exc}): run `python -m live.train.{script}` "
                         "again or restore the file from git") from None
    meta_path = Path(path).with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"encoder metadata {meta_path} is unreadable ({exc}): run `python -m live.train.{script}` "
                         "again or restore the file from git") from None
    if generator_sha256 and meta.get("generator_sha256") not in (None, generator_sha256):
        raise ValueError(f"encoder {path} was fitted for generator {meta.get('generator_sha256', '?')[:12]}, "
                         f"not {generator_sha256[:12]}: fit it again for this generator")
    return tensors, meta, header
