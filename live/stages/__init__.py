"""Pipeline stages, one module each. `build_stages` makes them by name from the config tree and one
`Avatar`, so every consumer (the CLI, each WebRTC peer, the benchmarks) assembles the same pipeline and no
stage depends on another having been built first."""

from __future__ import annotations

import logging

from live.assets import AssetStore
from live.avatar import Avatar, load_avatar
from live.config import Config
from live.controls import Controls
from live.stage import Stage

log = logging.getLogger(__name__)

STAGE_NAMES = ("tracking", "encoder", "synthesis", "warp")  # in pipeline order; warp only with config.warp.enabled


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


def neutral_render(config: Config, avatar: Avatar):
    """A function giving the avatar at an offset ([1,K,512]; None: at rest) as the synthesis stage renders it
    ([S,S,3] uint8, plain torch, without the roll)."""
    state = {}

    def render(offset=None):
        import torch

        from live.render import SynthesisNet, to_uint8

        if "net" not in state:
            s = config.synthesis
            state["net"] = SynthesisNet(avatar.generator, avatar.styles, avatar.k, s.size, s.early_exit,
                                        tuned_head=avatar.head)
        x = torch.zeros(1, avatar.k, 512) if offset is None else torch.as_tensor(offset, dtype=torch.float32)
        with torch.no_grad():
            return to_uint8(state["net"](x).numpy())

    return render


def warp_stage(config: Config, store: AssetStore, avatar: Avatar, controls: Controls | None = None) -> Stage:
    from live.avatar_mesh import encoder_directions
    from live.stages.warp import WarpStage

    w = config.warp
    if w.residual not in ("predicted", "observed"):
        raise ValueError(f"warp.residual must be 'predicted' or 'observed', got {w.residual!r}")
    directions = encoder_directions(avatar.encoder, avatar.emotion) if w.residual == "predicted" else None
    if directions is None and w.residual == "predicted":
        log.info("the warp tracks every render: this encoder's offsets have no directions to predict the mesh from")
    return WarpStage(store.resolve("face_landmarker"), neutral_render(config, avatar), directions, controls,
                     release_s=config.encoder.release_s, gains={"mouth": w.mouth, "eyes": w.eyes, "brows": w.brows})


def build_stages(names: list[str] | tuple[str, ...], config: Config, store: AssetStore,
                 avatar: Avatar | None = None, controls: Controls | None = None) -> list[Stage]:
    """The named stages in the order given. avatar: what the encoder and synthesis drive (default: loaded
    from the config, fitted only when the encoder is among them); controls: the encoder's live controls."""
    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; known: {', '.join(STAGE_NAMES)}")
    if "encoder" in names and config.synthesis.k is not None:
        raise ValueError("synthesis.k is set by the encoder when the encoder stage runs: leave it unset")
    if not config.warp.enabled:
        names = [n for n in names if n != "warp"]
    if "warp" in names and "encoder" not in names:
        raise ValueError("the warp stage follows the encoder's neutral: run it with the encoder stage")
    if avatar is None and ("encoder" in names or "synthesis" in names):
        avatar = load_avatar(config, store, fit=config.encoder.fit_avatar and "encoder" in names)
    if controls is None and "warp" in names:  # the encoder and the warp share one set (freeze, re-centre)
        controls = Controls(expression_gain=config.encoder.expression_gain, pose_gain=config.encoder.pose_gain,
                            warp_strength=config.warp.strength)
    stages = []
    for name in names:
        if name == "tracking":
            stages.append(tracking_stage(config, store))
        elif name == "encoder":
            stages.append(encoder_stage(config, avatar, controls))
        elif name == "synthesis":
            stages.append(synthesis_stage(config, avatar))
        else:
            stages.append(warp_stage(config, store, avatar, controls))
    return stages
