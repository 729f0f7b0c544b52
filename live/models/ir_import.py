"""Read MobileStyleGAN's OpenVINO IR (.xml graph + .bin weights) straight into the torch modules.

The .xml lists every `Const` layer with an offset and size into the .bin; edges connect layers. Named
constants (`m.layers.3.conv1.conv.modulation.weight`, ...) map one to one; the folded ones (the 3x3 and
1x1 weights with demodulation inside, the baked noise) are found by walking the graph from the named bias
of each styled convolution. Every tensor's shape is checked against the torch module, and the fixed
constants the architecture assumes (leaky slope, modulation scales, Haar filters) are checked too, so an
IR of another architecture is refused with a message instead of giving a wrong face. No openvino needed.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from live.models.mobilestylegan import HAAR, LRELU, Mapping, Synthesis

DTYPES = {"f32": np.float32, "f16": np.float16, "i64": np.int64, "i32": np.int32}


class IRFormatError(ValueError):
    """The IR is not the MobileStyleGAN graph this importer knows."""


@dataclass
class Layer:
    id: str
    type: str
    name: str
    data: dict


class IRGraph:
    def __init__(self, xml_path: Path, bin_path: Path):
        try:
            root = ET.parse(xml_path).getroot()
        except ET.ParseError as exc:
            raise IRFormatError(f"{xml_path} is not valid IR xml: {exc}") from exc
        self.blob = Path(bin_path).read_bytes()
        self.layers: dict[str, Layer] = {}
        for el in root.find("layers") if root.find("layers") is not None else []:
            data = el.find("data")
            self.layers[el.get("id")] = Layer(el.get("id"), el.get("type"), el.get("name"),
                                              dict(data.attrib) if data is not None else {})
        self.inputs: dict[str, list[str]] = {}  # layer -> producer layers, by input port
        self.consumers: dict[str, list[str]] = {}
        edges = sorted((int(e.get("to-port")), e.get("to-layer"), e.get("from-layer"))
                       for e in (root.find("edges") if root.find("edges") is not None else []))
        for _, to, frm in edges:
            self.inputs.setdefault(to, []).append(frm)
            self.consumers.setdefault(frm, []).append(to)
        self.by_name = {layer.name: layer for layer in self.layers.values()}
        if not self.layers:
            raise IRFormatError(f"{xml_path} has no layers")

    def const(self, layer: Layer) -> np.ndarray:
        if layer.type != "Const":
            raise IRFormatError(f"layer {layer.name} is {layer.type}, expected Const")
        d = layer.data
        offset, size = int(d["offset"]), int(d["size"])
        if offset + size > len(self.blob):
            raise IRFormatError(f"constant {layer.name} lies beyond the end of the .bin (truncated file?)")
        shape = [int(s) for s in d["shape"].split(",") if s.strip()] if d.get("shape") else []
        arr = np.frombuffer(self.blob, dtype=DTYPES[d["element_type"]], count=size // np.dtype(
            DTYPES[d["element_type"]]).itemsize, offset=offset)
        return arr.reshape(shape).astype(np.float32) if d["element_type"].startswith("f") else arr.reshape(shape)

    def named(self, name: str) -> np.ndarray:
        if name not in self.by_name:
            raise IRFormatError(f"the IR has no constant named {name}")
        return self.const(self.by_name[name])

    def producers(self, layer: Layer) -> list[Layer]:
        return [self.layers[i] for i in self.inputs.get(layer.id, [])]

    def consumer(self, layer: Layer, type_: str) -> Layer:
        found = [self.layers[i] for i in self.consumers.get(layer.id, []) if self.layers[i].type == type_]
        if len(found) != 1:
            raise IRFormatError(f"expected one {type_} after {layer.name}, found {len(found)}")
        return found[0]

    def split(self, layer: Layer, type_: str) -> tuple[Layer, Layer]:
        """(the producer of `type_`, the other producer) of a two-input layer."""
        a, b = self.producers(layer)
        if a.type == type_:
            return a, b
        if b.type == type_:
            return b, a
        raise IRFormatError(f"expected a {type_} input to {layer.name}, found {a.type} and {b.type}")


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _close(value: np.ndarray, expected: float, what: str) -> None:
    if value.size != 1 or not math.isclose(float(value.reshape(-1)[0]), expected, rel_tol=1e-5):
        raise IRFormatError(f"{what}: expected {expected}, the IR has {value.reshape(-1)[:4]}")


def mapping_state(g: IRGraph) -> dict[str, torch.Tensor]:
    matmuls = sorted((layer for layer in g.layers.values() if layer.type == "MatMul"), key=lambda x: int(x.id))
    state = {}
    for i, mm in enumerate(matmuls):
        weight = g.producers(mm)[1]
        add = g.consumer(mm, "Add")
        bias_reshape = [p for p in g.producers(add) if p.id != mm.id][0]
        bias = g.producers(bias_reshape)[0] if bias_reshape.type == "Reshape" else bias_reshape
        prelu = g.consumer(add, "PReLU")
        _close(g.const(g.producers(prelu)[1]), LRELU, f"mapping layer {i} leaky slope")
        mul = g.consumer(prelu, "Multiply")
        _close(g.const([p for p in g.producers(mul) if p.type == "Const"][0]), math.sqrt(2), f"mapping layer {i} gain")
        state[f"linears.{i}.weight"] = _t(g.const(weight))
        state[f"linears.{i}.bias"] = _t(g.const(bias)).reshape(-1)
    return state


def _styled(g: IRGraph, prefix: str, cin: int, kernel: int, state: dict, dst: str, depthwise: bool) -> None:
    """A styled conv, found from its named bias: bias <- Add(noise) <- Convolution(weight)."""
    mod_w = g.named(f"{prefix}.conv.modulation.weight")
    state[f"{dst}.conv.modulation.weight"] = _t(mod_w)
    state[f"{dst}.conv.modulation.bias"] = _t(g.named(f"{prefix}.conv.modulation.bias")).reshape(-1)
    scale_mul = g.consumer(g.consumer(g.consumer(g.by_name[f"{prefix}.conv.modulation.weight"], "MatMul"),
                                      "Add"), "Reshape")
    scale_mul = g.consumer(scale_mul, "Multiply")
    _close(g.const([p for p in g.producers(scale_mul) if p.type == "Const"][0]), 1 / math.sqrt(cin * kernel ** 2),
           f"{prefix} modulation scale")
    add_bias = g.consumer(g.by_name[f"{prefix}.bias"], "Add")
    add_noise, _ = g.split(add_bias, "Add")
    conv, noise = g.split(add_noise, "Convolution")
    state[f"{dst}.noise"] = _t(g.const(noise))
    state[f"{dst}.bias"] = _t(g.named(f"{prefix}.bias"))
    state[f"{dst}.conv.weight"] = _t(g.const(g.producers(conv)[1]))
    if depthwise:
        state[f"{dst}.conv.weight_dw"] = _t(g.named(f"{prefix}.conv.weight_dw")).reshape(cin, 1, 3, 3)
    prelu = g.consumer(add_bias, "PReLU")
    _close(g.const(g.producers(prelu)[1]), LRELU, f"{prefix} leaky slope")


def synthesis_state(g: IRGraph, model: Synthesis) -> dict[str, torch.Tensor]:
    state = {"input": _t(g.named("m.input.input"))}
    _styled(g, "m.conv1", model.conv1.conv.cin, 3, state, "conv1", depthwise=False)
    for i, b in enumerate(model.blocks):
        state[f"blocks.{i}.up_modulation.weight"] = _t(g.named(f"m.layers.{i}.up.modulation.weight"))
        state[f"blocks.{i}.up_modulation.bias"] = _t(g.named(f"m.layers.{i}.up.modulation.bias")).reshape(-1)
        _styled(g, f"m.layers.{i}.conv1", b.conv1.conv.cin, 3, state, f"blocks.{i}.conv1", depthwise=True)
        _styled(g, f"m.layers.{i}.conv2", b.conv2.conv.cin, 3, state, f"blocks.{i}.conv2", depthwise=True)
    last = len(model.blocks) - 1
    state["to_img.modulation.weight"] = _t(g.named(f"m.layers.{last}.to_img.conv.modulation.weight"))
    state["to_img.modulation.bias"] = _t(g.named(f"m.layers.{last}.to_img.conv.modulation.bias")).reshape(-1)
    state["to_img.weight"] = _t(g.named(f"m.layers.{last}.to_img.conv.weight"))
    state["to_img_bias"] = _t(g.named(f"m.layers.{last}.to_img.bias"))
    # The inverse-DWT filters must be Haar: (s, s) and (s, -s).
    for layer in g.layers.values():
        if layer.type == "GroupConvolutionBackpropData":
            f = g.const(g.producers(layer)[1]).reshape(-1, 2)
            if not (np.allclose(f[:, 0], HAAR, atol=1e-6) and np.allclose(np.abs(f[:, 1]), HAAR, atol=1e-6)):
                raise IRFormatError(f"{layer.name}: inverse DWT filter is not Haar: {f[0]}")
    return state


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Copy `state` into `module`, refusing missing, unexpected or mis-shaped tensors."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise IRFormatError(f"{what}: missing {missing[:5]}, unexpected {extra[:5]}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise IRFormatError(f"{what}: {k} has shape {list(v.shape)} in the IR, the model needs "
                                f"{list(own[k].shape)}")
    module.load_state_dict(state)


def import_ir(mapping: tuple[Path, Path], synthesis: tuple[Path, Path]) -> tuple[Mapping, Synthesis]:
    """Build the torch Mapping and Synthesis from the IR files ((xml, bin) for each)."""
    m, s = Mapping(), Synthesis()
    load_into(m, mapping_state(IRGraph(*mapping)), "mapping network")
    g = IRGraph(*synthesis)
    if not any(re.fullmatch(r"m\.layers\.\d+\.to_img\.conv\.weight", n) for n in g.by_name):
        raise IRFormatError("the synthesis IR has no to_img layer: not MobileStyleGAN")
    load_into(s, synthesis_state(g, s), "synthesis network")
    return m.eval(), s.eval()
