"""Encoders fitted to avatars, cached on disk: `fit_encoder` measures an avatar once (live.avatar_fit) and keeps
the result under the asset cache, keyed by the encoder's tensors, the identity and FIT_VERSION."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from live.avatar_fit import FIT_VERSION, KEEP_FITS, ReadOffset, RenderedAvatar, fit_to_avatar
from live.encoder import Encoder
from live.models.encoder import LinearEncoder

log = logging.getLogger(__name__)


class AvatarFits:
    """Encoders fitted to avatars, cached on disk by (encoder tensors, identity key, FIT_VERSION)."""

    def __init__(self, cache_dir: Path):
        # cache_dir: where fitted encoders are kept (a small safetensors + json each).
        self.cache_dir = Path(cache_dir)

    def path(self, enc: Encoder, identity_key: str) -> Path:
        h = hashlib.sha256(f"v{FIT_VERSION}:{identity_key}:".encode())
        for name, t in sorted(enc.response.tensors().items()):
            h.update(name.encode() + np.ascontiguousarray(t).tobytes())
        return self.cache_dir / f"avatar-{h.hexdigest()[:24]}.safetensors"

    def get(self, enc: Encoder | LinearEncoder, identity_key: str, make_reader: Callable[[], ReadOffset],
            progress: Callable[[int, int], None] | None = None) -> Encoder | LinearEncoder:
        """The cached fit, else a new one (then cached); `enc` itself when it has no governor to fit or the
        avatar's neutral face is not found by dlib. make_reader: builds the avatar's reader (only when fitting; closed
        after it when it has a close())."""
        if not isinstance(enc, Encoder) or enc.response.governor is None:
            return enc
        path = self.path(enc, identity_key)
        if path.is_file():
            try:
                fitted = Encoder.load(path)
            except (ValueError, OSError) as exc:
                log.warning("ignoring a damaged avatar fit %s (%s): fitting again", path, exc)
            else:
                try:
                    path.touch()  # used now: the last to be pruned
                except OSError:
                    pass  # a read-only cache still serves its fits
                return fitted
        read = make_reader()
        try:
            fitted = fit_to_avatar(enc, read, progress)
        finally:
            close = getattr(read, "close", None)
            if close is not None:
                close()
        if fitted is None:
            log.warning("dlib does not find the avatar's neutral face: its identity governor uses the mean costs "
                        "of the calibration faces")
            return enc
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fitted.save(path)  # written then renamed
        self.prune()
        return fitted

    def prune(self, keep: int = KEEP_FITS) -> None:
        """Delete all but the `keep` most recently used fits (weights and their .json)."""
        def used(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except FileNotFoundError:  # deleted meanwhile (another process pruning)
                return 0.0

        fits = sorted(self.cache_dir.glob("avatar-*.safetensors"), key=used, reverse=True)
        for old in fits[keep:]:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
        if fits[keep:]:
            log.info("avatar fit cache: %d older fits deleted (%d kept)", len(fits) - keep, keep)


def fit_encoder(enc: Encoder | LinearEncoder, store, generator, identity, tuning=None, progress: bool = True,
                learned: bool = True) \
        -> Encoder | LinearEncoder:
    """`enc` fitted to the avatar of `identity` (W+ styles [1,L,512], optional live.tuning.Tuning), cached under
    the asset cache; a tqdm bar on stderr while it measures (the first time only)."""
    from live.render import identity_key, live_head_tag

    def make_reader() -> ReadOffset:
        from live.probe import FaceReader
        from live.render import SynthesisNet

        log.info("fitting the encoder to this avatar (once, ~25 s; cached)")
        return RenderedAvatar(SynthesisNet(generator, identity, enc.k, 256, tuning=tuning,
                                                 learned_head=learned), FaceReader(store))

    bar = None

    def tick(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, desc="fitting to the avatar", unit="render", disable=not progress, leave=False)
        bar.update(done - bar.n)

    try:
        key = identity_key(identity, tuning) + ("" if tuning is not None or not learned else live_head_tag(256))
        return AvatarFits(Path(store.cache_dir) / "avatars").get(enc, key, make_reader, tick)
    except RuntimeError as exc:  # the dlib models cannot be had (offline, no dlib): drive it with the mean tables
        log.warning("cannot fit the encoder to this avatar (%s): using the calibration faces' mean curves and "
                    "costs; --no-avatar-fit silences this", exc)
        return enc
    finally:
        if bar is not None:
            bar.close()
