"""Write, then rename: a file the user or the cache relies on is either whole or absent, never half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def save_atomic(path: Path, write: Callable[[str], None]) -> None:
    """Call write(tmp) with a temporary path beside `path` (its folder made if missing), then rename it to `path`.
    The temporary file is removed if `write` fails; the new file is 0644 (mkstemp's would be 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def save_text_atomic(path: Path, text: str) -> None:
    save_atomic(path, lambda tmp: Path(tmp).write_text(text))
