"""Pipeline stages, one module each. `build_stages` makes them by name from the config tree and one
`Avatar`, so every consumer (the CLI, each WebRTC peer, the benchmarks) assembles the same pipeline and no
stage depends on another having been built first."""

from __future__ import annotations

from live.assets import AssetStore
from live.avatar import Avatar, load_avatar
from live.config import Config
from live.controls import Controls
from live.stage import Stage

STAGE_NAMES = ("tracking", "encoder", "synthesis")  # in pipeline order


def tracking_stage(config: Config, store: AssetStore) -> Stage:
    from live.stages.tracking import TrackingStage

    t = config.tracking
    return TrackingStage(store.resolve("face_landmarker"), smoothing=t.smoothing, num_faces=t.num_faces,
                         max_side=t.max_side)


def encoder_stage(config: Config, avatar: Avatar, controls: Controls | None = None) -> Stage:
    from live.stages.encoder import EncoderStage

    e = config.encoder
    return EncoderStage(avatar.encoder, relative=e.relative, smoothing_s=e.smoothing_s, release_s=e.release_s,
                        expression_gain=e.expression_gain, pose_gain=e.pose_gain, controls=controls,
                        emotion_direction=avatar.emotion)


def synthesis_stage(config: Config, avatar: Avatar) -> Stage:
    from live.render import SynthesisNet, make_backend
    from live.stages.synthesis import SynthesisStage

    s = config.synthesis
    k = avatar.k if s.k is None else s.k
    net = SynthesisNet(avatar.generator, avatar.styles, k, s.size, s.early_exit, tuned_head=avatar.head)
    return SynthesisStage(make_backend(s.backend, net, avatar.generator, avatar.styles, device=s.device),
                          device=s.device)


def build_stages(names: list[str] | tuple[str, ...], config: Config, store: AssetStore,
                 avatar: Avatar | None = None, controls: Controls | None = None) -> list[Stage]:
    """The named stages in the order given. avatar: what the encoder and synthesis drive (default: loaded
    from the config, fitted only when the encoder is among them); controls: the encoder's live controls."""
    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; known: {', '.join(STAGE_NAMES)}")
    if "encoder" in names and config.synthesis.k is not None:
        raise ValueError("synthesis.k is set by the encoder when the encoder stage runs: leave it unset")
    if avatar is None and ("encoder" in names or "synthesis" in names):
        avatar = load_avatar(config, store, fit=config.encoder.fit_avatar and "encoder" in names)
    stages = []
    for name in names:
        if name == "tracking":
            stages.append(tracking_stage(config, store))
        elif name == "encoder":
            stages.append(encoder_stage(config, avatar, controls))
        else:
            stages.append(synthesis_stage(config, avatar))
    return stages
