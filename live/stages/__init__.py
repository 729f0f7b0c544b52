"""Pipeline stages, one module each. `build_stage` makes one by name from the config tree, so the CLI and
the benchmarks assemble pipelines the same way (later stages register here too)."""

from __future__ import annotations

from typing import Callable

from live.assets import AssetStore
from live.config import Config
from live.stage import Stage


def _tracking(config: Config, store: AssetStore) -> Stage:
    from live.stages.tracking import TrackingStage

    t = config.tracking
    return TrackingStage(store.resolve("face_landmarker"), smoothing=t.smoothing, num_faces=t.num_faces,
                         max_side=t.max_side)


def configured_identity(config: Config, store: AssetStore):
    """(generator, W+ styles [1,L,512], tuned 256² head or None) of the configured identity."""
    from live.models.generator import load_mobilestylegan
    from live.synthesis import seed_identity

    s = config.synthesis
    generator = load_mobilestylegan(store)
    if s.identity_file is not None:
        from live.identity import load_identity

        enrolled = load_identity(s.identity_file, generator.source_sha256)
        return generator, enrolled.styles, enrolled.head
    return generator, seed_identity(generator, s.seed, s.truncation), None


def _synthesis(config: Config, store: AssetStore) -> Stage:
    from live.stages.synthesis import SynthesisStage
    from live.synthesis import SynthesisNet, make_backend

    s = config.synthesis
    generator, identity, tuned = configured_identity(config, store)
    net = SynthesisNet(generator, identity, s.k, s.size, s.early_exit, tuned_head=tuned)
    return SynthesisStage(make_backend(s.backend, net, generator, identity, device=s.device), device=s.device)


def _encoder(config: Config, store: AssetStore) -> Stage:
    from live.models.emotion import load_direction
    from live.models.encoder import load_encoder
    from live.stages.encoder import EncoderStage

    e = config.encoder
    enc = load_encoder()
    if enc.k != config.synthesis.k:
        config.synthesis.k = enc.k  # the synthesis takes what the encoder gives
    if e.fit_avatar:
        from live.avatar_fit import fit_encoder

        enc = fit_encoder(enc, store, *configured_identity(config, store), progress=store.progress)
    return EncoderStage(enc, relative=e.relative, smoothing_s=e.smoothing_s, release_s=e.release_s,
                        expression_gain=e.expression_gain, pose_gain=e.pose_gain,
                        emotion_direction=load_direction(enc.k))


STAGES: dict[str, Callable[[Config, AssetStore], Stage]] = {
    "tracking": _tracking,
    "encoder": _encoder,
    "synthesis": _synthesis,
}


def build_stage(name: str, config: Config, store: AssetStore) -> Stage:
    try:
        factory = STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; known: {', '.join(STAGES)}") from None
    return factory(config, store)
