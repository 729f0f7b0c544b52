"""The avatar a pipeline drives: one identity and everything made for it, loaded once.

`load_avatar` reads the generator, the identity (a generated seed or an enrolled identity file), the
encoder and, unless told not to, fits that encoder to this avatar (live.avatar_fit, cached). The stages
that need an avatar (encoder, synthesis) are built from this one record, so neither depends on the other
having been built first, and the synthesis always takes the offset layers the encoder drives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from live.assets import AssetStore
from live.config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Avatar:
    """One identity ready to drive."""

    generator: object  # live.models.generator.MobileStyleGAN
    styles: torch.Tensor  # [1,L,512] float32 W+ the avatar keeps
    tuning: object | None  # live.tuning.Tuning made at enrollment (`live enroll --tune`), or None
    crop: np.ndarray | None  # [S,S,3] uint8 RGB aligned source photo of an enrolled identity, else None
    encoder: object  # live.encoder.Encoder fitted to this avatar where it could be (LinearEncoder: the baseline)
    emotion: np.ndarray | None  # [1,K,512] happy(+)/sad(-) edit for the encoder's K, or None
    photo: np.ndarray | None = None  # [h,w,3] uint8 RGB the enrolled portrait around the face (live.compose), or None
    photo_quad: np.ndarray | None = None  # [4,2] float64 the FFHQ crop's corners in `photo`'s pixels
    rest_offset: np.ndarray | None = None  # [1,K,512] the neutral rest folded into `styles` (live.rest), or None:
    # rendering at -rest_offset shows the identity's own rest

    @property
    def k(self) -> int:
        """Leading style layers that take the per-frame offset."""
        return self.encoder.k


def load_avatar(config: Config, store: AssetStore, fit: bool | None = None, encoder=None) -> Avatar:
    """The avatar of `config.synthesis` (seed or identity file). fit: fit the encoder to it (default:
    config.encoder.fit_avatar); encoder: drive it with this encoder (default: the committed one)."""
    from live.encoder import load_encoder
    from live.models.emotion import load_direction
    from live.models.generator import load_mobilestylegan
    from live.render import seed_identity

    s = config.synthesis
    generator = load_mobilestylegan(store)
    crop = tuning = photo = quad = None
    if s.identity_file is not None:
        from live.identity_file import IdentityFileError, load_identity

        enrolled = load_identity(s.identity_file, generator.source_sha256)
        styles, tuning, crop = enrolled.styles, enrolled.tuning, enrolled.crop
        photo, quad = enrolled.photo, enrolled.photo_quad
        if styles.shape[1] != generator.num_layers:
            raise IdentityFileError(f"{s.identity_file} holds {styles.shape[1]} style layers, the generator takes "
                                    f"{generator.num_layers} (damaged): enroll the portrait again")
    else:
        styles = seed_identity(generator, s.seed, s.truncation)
    encoder = load_encoder() if encoder is None else encoder
    rest_offset = None
    if resting_face(config) == "neutral":
        styles, rest_offset = neutral_styles(config, store, generator, styles, tuning, crop, encoder)
    if config.encoder.fit_avatar if fit is None else fit:
        from live.avatar_fit_cache import fit_encoder
        from live.stages import learned_head

        probe = Avatar(generator, styles, tuning, crop, encoder, None)
        encoder = fit_encoder(encoder, store, generator, styles, tuning, progress=store.progress,
                              learned=learned_head(config, probe))
    return Avatar(generator, styles, tuning, crop, encoder, load_direction(encoder.k), photo, quad, rest_offset)


def resting_face(config: Config) -> str:
    """"own" or "neutral": config.encoder.rest with "auto" resolved (neutral with the warp: the warp's mouth then
    follows a driver's from a closed mouth instead of squeezing a drawn smile; without it own, which keeps identity
    closer: benchmarks/QUALITY.md)."""
    rest = config.encoder.rest
    if rest not in ("auto", "own", "neutral"):
        raise ValueError(f"the avatar's rest must be auto, own or neutral, got {rest!r}")
    if rest == "auto":
        return "neutral" if config.warp.enabled else "own"
    return rest


def neutral_styles(config: Config, store: AssetStore, generator, styles: torch.Tensor, tuning, crop,
                   encoder) -> tuple[torch.Tensor, np.ndarray | None]:
    """(styles with the identity's neutral rest folded into its first K layers, the rest's offset [1,K,512] or None
    where it keeps its own rest): live.rest, measured once per identity and cached."""
    from pathlib import Path

    from live.encoder import Encoder
    from live.rest import RestCache
    from live.stages import learned_head

    if not isinstance(encoder, Encoder) or "smile" not in encoder.names:
        log.warning("--rest neutral needs the calibrated encoder's smile direction: keeping the avatar's own rest")
        return styles, None
    from live.render import identity_key, live_head_tag

    learned = learned_head(config, Avatar(generator, styles, tuning, crop, encoder, None))
    direction = encoder.response.directions[encoder.names.index("smile")]

    def make_reader():
        from live.avatar_fit import RenderedAvatar
        from live.probe import FaceReader
        from live.render import SynthesisNet

        log.info("measuring the avatar's resting face (once, a few seconds; cached)")
        return RenderedAvatar(SynthesisNet(generator, styles, encoder.k, 256, tuning=tuning, learned_head=learned),
                              FaceReader(store))

    key = identity_key(styles, tuning) + ("" if tuning is not None or not learned else live_head_tag(256))
    try:
        rest = RestCache(Path(store.cache_dir) / "avatars").get(key, direction, make_reader)
    except RuntimeError as exc:  # the dlib or MediaPipe models cannot be had
        log.warning("cannot measure the avatar's resting face (%s): keeping its own rest", exc)
        return styles, None
    if rest is None or rest.coefficient == 0:
        if rest is not None:
            log.info("the avatar's own rest is neutral enough (smile %.2f): kept", rest.smile_before)
        return styles, None
    offset = rest.offset(direction)
    log.info("neutral rest: smile %.2f -> %.2f at identity distance %.2f", rest.smile_before, rest.smile_after,
             rest.identity_cost)
    moved = styles.clone()
    moved[:, :encoder.k] += torch.from_numpy(offset[0])
    return moved, offset
