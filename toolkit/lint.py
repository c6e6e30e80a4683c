"""TensorRT compatibility lint for ONNX models: what each TensorRT ONNX parser will refuse.

Targets: "8.5" (JetPack 5), "10" (JetPack 6's 10.3 and desktop 10.x) and "11" (desktop,
strongly typed only). The support tables follow onnx-tensorrt's ``docs/operators.md`` for
the 8.5 GA release (plus the Mod/OneHot/HardSwish corrections published right after it),
the 10.1 release for "10", and the latest published table (10.15, opsets 9..24) for "11".

Each rule yields a ``Finding`` naming the node. Errors are what the parser or builder
rejects (unsupported op, 5-D GridSample, non-zero or uint8 Q/DQ zero point, int32-quantized
bias, opset out of range, sizes not multiples of 32); warnings are what builds but costs
accuracy or speed (ScatterND chains, large baked constants, casts of INT64/DOUBLE).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from toolkit.errors import InputError, ModelError

ERROR, WARNING = "error", "warning"
MODEL = "(model)"

SUPPORTED_8_5 = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu Clip
Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout
Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor GRU Gather GatherElements GatherND Gemm
GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample HardSigmoid HardSwish Identity If
ImageScaler InstanceNormalization IsNaN LRN LSTM LeakyRelu Less LessOrEqual Log LogSoftmax Loop
LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression NonZero
Not OneHot Or PRelu Pad ParametricSoftplus Pow QuantizeLinear RNN RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean
ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RoiAlign Round ScaledTanh
Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus
Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze
Upsample Where Xor
""".split())
SUPPORTED_10 = SUPPORTED_8_5 | frozenset(
    "CastLike DeformConv Gelu GroupNormalization Hardmax IsInf LayerNormalization Mish".split()
)
SUPPORTED_11 = SUPPORTED_10 | frozenset(
    "Attention BlackmanWindow HammingWindow HannWindow RMSNormalization RotaryEmbedding STFT TensorScatter".split()
)


@dataclass(frozen=True)
class TrtTarget:
    """What one TensorRT version's ONNX parser accepts."""

    name: str
    opsets: tuple[int, int]
    ops: frozenset
    float_types: frozenset  # ONNX element types usable as activations


TARGETS = {
    "8.5": TrtTarget("8.5", (7, 17), SUPPORTED_8_5, frozenset({"FLOAT", "FLOAT16", "DOUBLE"})),
    "10": TrtTarget("10", (9, 20), SUPPORTED_10, frozenset({"FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE"})),
    "11": TrtTarget("11", (9, 24), SUPPORTED_11, frozenset({"FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE"})),
}
RESIZE_MODES = frozenset({"nearest", "linear"})
RESIZE_COORDINATES = frozenset({"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"})
RESIZE_NEAREST = frozenset({"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"})
# Inputs the parser needs as build-time constants: op -> input index.
CONSTANT_INPUTS = {"Slice": 3, "Squeeze": 1, "Unsqueeze": 1, "CumSum": 1, "TopK": 1, "Pad": 3,
                   **{op: 1 for op in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
                                       "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare")}}
WEIGHT_AXIS = {"Conv": 0, "ConvTranspose": 1}  # per-channel quantization axis TensorRT expects for weights
LARGE_CONSTANT_BYTES = 8 << 20
WEIGHT_CONSUMERS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm", "DequantizeLinear", "QuantizeLinear"})
PAD_MULTIPLE = 32


@dataclass(frozen=True)
class Finding:
    """One lint result: the node, its op type, what is wrong and how bad."""

    node: str
    op: str
    message: str
    severity: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity}: {self.node} [{self.op}]: {self.message}"


def check_trt_target(trt: str) -> TrtTarget:
    """The target for a version string: "8.5" / "8.5.2" / "8.6" -> 8.5 rules, "10" / "10.3.0" -> 10, "11".

    TensorRT 8.6 is linted with the 8.5 rules (a superset parses, so the check stays safe).

    Raises:
        InputError: a version older than 8.5 or unknown.
    """
    parts = str(trt).strip().split(".")
    if parts[0] == "8" and len(parts) > 1 and parts[1].isdigit() and int(parts[1]) >= 5:
        return TARGETS["8.5"]
    if parts[0] in ("10", "11"):
        return TARGETS[parts[0]]
    raise InputError(f"--trt {trt!r}: expected 8.5 (JetPack 5), 10 (JetPack 6) or 11, optionally with a patch version")


def load_onnx(path: str | os.PathLike):
    """Load an ONNX file for inspection; one-line errors for a missing or non-ONNX file."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such ONNX file")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # DecodeError, ValueError or OSError depending on the damage
        raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__}); expected a .onnx file") from None
    # An empty file parses as an empty protobuf message: a model without a graph, not a clean one.
    if not proto.graph.node:
        raise ModelError(f"{path}: an ONNX file without a graph (empty or truncated); expected a model from "
                         "`stereo-trt export`")
    return proto


def lint_onnx(model, trt: str = "8.5") -> list[Finding]:
    """Check an ONNX model against one TensorRT version's ONNX parser.

    Args:
        model: path to an .onnx file or an ``onnx.ModelProto``.
        trt: "8.5", "10" or "11".

    Returns:
        Findings, errors first, each naming the offending node.

    Raises:
        InputError / ModelError: unknown target, missing file, not an ONNX model.
    """
    target = check_trt_target(trt)
    proto = model if hasattr(model, "graph") else load_onnx(model)
    graph = GraphView(proto)
    findings = (
        check_opset(proto, target)
        + check_ops(graph, target)
        + check_types(graph, target)
        + check_quantization(graph)
        + check_input_shapes(proto, graph)
        + check_performance(graph)
    )
    return sorted(findings, key=lambda f: f.severity != ERROR)


class GraphView:
    """Shape-inferred graph with lookups the rules need: constants, producers, ranks, dtypes."""

    def __init__(self, proto) -> None:
        import onnx

        try:
            inferred = onnx.shape_inference.infer_shapes(proto)
        except Exception:  # a graph shape inference cannot follow is still worth linting op by op
            inferred = proto
        self.graph = inferred.graph
        self.nodes = list(self.graph.node)
        self.initializers = {t.name: t for t in self.graph.initializer}
        self.constant_nodes = {out: n for n in self.nodes if n.op_type == "Constant" for out in n.output}
        self.producers = {out: n for n in self.nodes for out in n.output}
        self.value_types = {}
        for value in list(self.graph.input) + list(self.graph.value_info) + list(self.graph.output):
            if value.type.HasField("tensor_type"):
                self.value_types[value.name] = value.type.tensor_type

    def is_constant(self, name: str) -> bool:
        return name in self.initializers or name in self.constant_nodes

    def constant(self, name: str):
        """The numpy value of an initializer or Constant output, else None."""
        from onnx import numpy_helper

        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.constant_nodes.get(name)
        if node is not None:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def elem_type(self, name: str) -> str | None:
        """ONNX element type name (FLOAT, INT8 ...) of a tensor, when known."""
        import onnx

        if name in self.initializers:
            return onnx.TensorProto.DataType.Name(self.initializers[name].data_type)
        value = self.constant(name) if name in self.constant_nodes else None
        if value is not None:
            return onnx.TensorProto.DataType.Name(onnx.helper.np_dtype_to_tensor_dtype(value.dtype))
        kind = self.value_types.get(name)
        if kind is None or not kind.elem_type:
            return None
        return onnx.TensorProto.DataType.Name(kind.elem_type)

    def rank(self, name: str) -> int | None:
        if name in self.initializers:
            return len(self.initializers[name].dims)
        kind = self.value_types.get(name)
        if kind is None or not kind.HasField("shape"):
            return None
        return len(kind.shape.dim)


def attribute(node, name: str, default=None):
    import onnx

    for attr in node.attribute:
        if attr.name == name:
            value = onnx.helper.get_attribute_value(attr)
            return value.decode() if isinstance(value, bytes) else value
    return default


def node_name(node) -> str:
    return node.name or (node.output[0] if node.output else "(unnamed)")


def finding(node, message: str, severity: str = ERROR) -> Finding:
    return Finding(node_name(node), node.op_type, message, severity)


def check_opset(proto, target: TrtTarget) -> list[Finding]:
    """The default-domain opset must lie in the parser's range."""
    low, high = target.opsets
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx") and not low <= entry.version <= high:
            return [Finding(MODEL, "opset", f"opset {entry.version} is outside TensorRT {target.name}'s "
                            f"ONNX parser range {low}..{high}; re-export with --opset {min(max(entry.version, low), high)}", ERROR)]
    return []


def check_ops(graph: GraphView, target: TrtTarget) -> list[Finding]:
    """Op support and the per-op restrictions the parser documents."""
    findings = []
    for node in graph.nodes:
        if node.domain not in ("", "ai.onnx"):
            findings.append(finding(node, f"custom domain {node.domain!r}: TensorRT parses only standard ONNX ops "
                                          "(a plugin would be needed)"))
            continue
        if node.op_type not in target.ops:
            findings.append(finding(node, f"{node.op_type} is not supported by TensorRT {target.name}'s ONNX parser"))
            continue
        findings.extend(RULES.get(node.op_type, lambda n, g, t: [])(node, graph, target))
        index = CONSTANT_INPUTS.get(node.op_type)
        if index is not None and len(node.input) > index and node.input[index] and not graph.is_constant(node.input[index]):
            findings.append(finding(node, f"input {index} ({node.input[index]}) must be a build-time constant "
                                          "(initializer) for TensorRT"))
    return findings


def rule_grid_sample(node, graph: GraphView, target: TrtTarget) -> list[Finding]:
    rank = graph.rank(node.input[0])
    if rank is None:
        return [finding(node, "input rank unknown; TensorRT's GridSample takes 4-D (N, C, H, W) input only", WARNING)]
    if rank != 4:
        return [finding(node, f"{rank}-D GridSample: TensorRT supports 4-D GridSample only (from 8.5 on); "
                              "sample a 5-D volume as a 4-D one (fold the extra axis into channels or batch)")]
    return []


def rule_resize(node, graph: GraphView, target: TrtTarget) -> list[Finding]:
    findings = []
    mode = attribute(node, "mode", "nearest")
    coordinates = attribute(node, "coordinate_transformation_mode", "half_pixel")
    if mode not in RESIZE_MODES:
        findings.append(finding(node, f"Resize mode {mode!r}: TensorRT supports {sorted(RESIZE_MODES)}"))
    if coordinates not in RESIZE_COORDINATES:
        findings.append(finding(node, f"coordinate_transformation_mode {coordinates!r}: TensorRT supports "
                                      f"{sorted(RESIZE_COORDINATES)}"))
    if mode == "nearest" and attribute(node, "nearest_mode", "round_prefer_floor") not in RESIZE_NEAREST:
        findings.append(finding(node, f"nearest_mode {attribute(node, 'nearest_mode')!r} is not supported"))
    if attribute(node, "antialias", 0):
        findings.append(finding(node, "antialiased Resize is not supported by TensorRT"))
    return findings


def rule_pool(node, graph: GraphView, target: TrtTarget) -> list[Finding]:
    findings = []
    kernel = attribute(node, "kernel_shape", [])
    if len(kernel) not in (2, 3):
        findings.append(finding(node, f"{len(kernel)}-D pooling: TensorRT pools in 2-D or 3-D only"))
    dilations = attribute(node, "dilations", [])
    if any(d != 1 for d in dilations):
        findings.append(finding(node, f"dilations {list(dilations)}: TensorRT pooling needs dilations of 1"))
    if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
        findings.append(finding(node, "MaxPool's Indices output is not supported by TensorRT"))
    return findings


def rule_scatter_nd(node, graph: GraphView, target: TrtTarget) -> list[Finding]:
    reduction = attribute(node, "reduction", "none")
    if reduction != "none":
        return [finding(node, f"ScatterND reduction {reduction!r}: TensorRT supports reduction 'none' only")]
    return []


RULES = {
    "GridSample": rule_grid_sample,
    "Resize": rule_resize,
    "MaxPool": rule_pool,
    "AveragePool": rule_pool,
    "ScatterND": rule_scatter_nd,
}


def check_types(graph: GraphView, target: TrtTarget) -> list[Finding]:
    """Activation types the target cannot hold (BF16 on 8.5, FP8 anywhere outside Q/DQ)."""
    findings = []
    for node in graph.nodes:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear", "Cast", "Constant"):
            continue
        for name in node.output:
            kind = graph.elem_type(name)
            if kind and kind.startswith(("FLOAT", "BFLOAT")) and kind not in target.float_types:
                findings.append(finding(node, f"output {name} is {kind}, which TensorRT {target.name} cannot compute in"))
            elif kind == "DOUBLE":
                findings.append(finding(node, f"output {name} is DOUBLE; TensorRT casts it to FLOAT", WARNING))
    return findings


def check_quantization(graph: GraphView) -> list[Finding]:
    """TensorRT's explicit-quantization rules: symmetric int8, zero point 0, no int32 bias, weight axes."""
    findings = []
    consumers = {}
    for node in graph.nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.nodes:
        if node.op_type == "QuantizeLinear":
            findings.extend(check_zero_point(node, graph, 2, "y_zero_point"))
        elif node.op_type == "DequantizeLinear":
            kind = graph.elem_type(node.input[0])
            if kind == "INT32":
                findings.append(finding(node, "int32-quantized tensor (typically a quantized bias): TensorRT "
                                              "dequantizes int8 only; quantize with QuantizeBias=False"))
            elif kind not in (None, "INT8", "INT4", "FLOAT8E4M3FN"):
                findings.append(finding(node, f"{kind} input: TensorRT's DequantizeLinear takes symmetric INT8"))
            findings.extend(check_zero_point(node, graph, 2, "x_zero_point"))
            findings.extend(check_weight_axis(node, graph, consumers))
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            scale = graph.constant(node.input[1]) if len(node.input) > 1 else None
            if scale is None:
                findings.append(finding(node, "scale must be a build-time constant for TensorRT"))
            elif (scale <= 0).any():
                findings.append(finding(node, "scale must be positive"))
    return findings


def check_zero_point(node, graph: GraphView, index: int, label: str) -> list[Finding]:
    """Zero point present, int8 and all zeros (a missing one means uint8 in ONNX)."""
    if node.op_type == "QuantizeLinear" and (len(node.input) <= index or not node.input[index]):
        if attribute(node, "output_dtype", 0) in (0, 2):  # 2 = UINT8, the ONNX default
            return [finding(node, f"no {label}: ONNX then quantizes to uint8, TensorRT needs an int8 zero point of 0")]
        return []
    if len(node.input) <= index or not node.input[index]:
        return []
    value = graph.constant(node.input[index])
    if value is None:
        return [finding(node, f"{label} must be a constant int8 zero for TensorRT")]
    findings = []
    if value.dtype.name != "int8":
        findings.append(finding(node, f"{label} is {value.dtype.name}; TensorRT needs symmetric int8 (zero point 0)"))
    if (value != 0).any():
        findings.append(finding(node, f"{label} is {value.ravel()[:4].tolist()}; TensorRT needs it to be 0"))
    return findings


def check_weight_axis(node, graph: GraphView, consumers: dict) -> list[Finding]:
    """Per-channel weights of Conv/ConvTranspose must be quantized along the output-channel axis."""
    scale = graph.constant(node.input[1]) if len(node.input) > 1 else None
    if scale is None or scale.ndim == 0 or scale.size == 1:
        return []
    findings = []
    axis = attribute(node, "axis", 1)
    for consumer in consumers.get(node.output[0], []):
        expected = WEIGHT_AXIS.get(consumer.op_type)
        if expected is not None and len(consumer.input) > 1 and consumer.input[1] == node.output[0] and axis != expected:
            findings.append(finding(node, f"per-channel axis {axis} for {consumer.op_type} weights; TensorRT "
                                          f"expects axis {expected}"))
    return findings


def check_input_shapes(proto, graph: GraphView) -> list[Finding]:
    """Stereo inputs: static H, W must be multiples of 32; dynamic ones need a recorded min/opt/max of multiples of 32."""
    from toolkit.onnx_meta import METADATA_KEY, get_stereo_metadata
    from toolkit.preprocess import INPUT_NAMES

    findings = []
    dynamic_inputs = []
    for value in graph.graph.input:
        if value.name not in INPUT_NAMES or not value.type.HasField("tensor_type"):
            continue
        dims = value.type.tensor_type.shape.dim
        if len(dims) != 4:
            continue
        static = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if static[2] is None or static[3] is None:
            dynamic_inputs.append(value.name)
            continue
        if static[2] % PAD_MULTIPLE or static[3] % PAD_MULTIPLE:
            findings.append(Finding(value.name, "input", f"input size {static[2]}x{static[3]} is not a multiple of "
                                    f"{PAD_MULTIPLE}; the network's 1/32 stages need multiples of {PAD_MULTIPLE}", ERROR))
    if not any(p.key == METADATA_KEY for p in proto.metadata_props):
        return findings + [Finding(MODEL, "metadata", "no stereo-trt metadata: not written by `stereo-trt export`, "
                                   "so size, iterations and precision cannot be checked", WARNING)]
    profile = get_stereo_metadata(proto).get("dynamic")
    if dynamic_inputs and not profile:
        findings.append(Finding(", ".join(dynamic_inputs), "input", "dynamic height/width without a recorded "
                                "min/opt/max profile; TensorRT needs one (re-export with --dynamic)", ERROR))
    for label, hw in (profile or {}).items():
        if hw[0] % PAD_MULTIPLE or hw[1] % PAD_MULTIPLE:
            findings.append(Finding(MODEL, "profile", f"dynamic {label} size {hw[0]}x{hw[1]} is not a multiple of "
                                    f"{PAD_MULTIPLE}", ERROR))
    return findings


def check_performance(graph: GraphView) -> list[Finding]:
    """Patterns that build but run slowly: ScatterND chains and large constants that are not weights."""
    findings = []
    scatter = [n for n in graph.nodes if n.op_type == "ScatterND"]
    if len(scatter) >= 4:
        findings.append(Finding(node_name(scatter[0]), "ScatterND", f"{len(scatter)} ScatterND nodes (a per-index "
                                "Python loop in the model?); they run slowly in TensorRT and ONNX Runtime", WARNING))
    weight_inputs = {n.input[i] for n in graph.nodes if n.op_type in WEIGHT_CONSUMERS for i in range(1, len(n.input))}
    for name, tensor in graph.initializers.items():
        size = tensor_bytes(tensor)
        if size >= LARGE_CONSTANT_BYTES and name not in weight_inputs:
            findings.append(Finding(name, "initializer", f"{size / 2**20:.1f} MB constant that is not a weight "
                                    "(a baked zero/index tensor?); build it from shapes at run time", WARNING))
    return findings


def tensor_bytes(tensor) -> int:
    import numpy as np
    import onnx

    count = int(np.prod(tensor.dims)) if tensor.dims else 1
    return count * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == ERROR]
