"""Retype an FP32 ONNX graph to FP16 for strongly typed TensorRT, keeping the fragile parts in FP32.

TensorRT 11 builds every network strongly typed: each tensor runs in the type the ONNX
declares, so an FP16 engine needs an FP16-typed ONNX. Stereo networks break in FP16 in
known places, so these nodes stay FP32 (with Cast nodes inserted at the boundaries):

* reductions, softmax and normalisation layers (``KEEP_FP32_OPS``): the correlation mean,
  the softmax over disparity planes, the regression sum and InstanceNorm statistics, where
  FP16's range (65504) and 11-bit mantissa overflow or round;
* products that feed such a reduction through reshapes only: the correlation product and
  the ``prob * disparity`` product of the regression;
* matrix products of two activations (a correlation written as MatMul, which sums over
  channels before any scaling) and the reshapes, slices and constant scalings after them, up
  to the next layer that computes;
* every node that reads or writes a single-channel map: disparities (and confidences),
  whose FP16 step at 100+ px is 0.06 px and would be fed back through every iteration.

Inputs and outputs keep their FP32 type, so runners feed the same arrays for every precision.
"""

from __future__ import annotations

import re

import numpy as np

KEEP_FP32_OPS = frozenset({
    "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceProd", "CumSum", "Einsum",
    "InstanceNormalization", "LayerNormalization", "GroupNormalization", "MeanVarianceNormalization",
})
SHAPE_ONLY_OPS = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Transpose", "Flatten", "Identity"})
# Ops that only move, select or rescale values: they stay in the precision of what feeds them.
PASSTHROUGH_OPS = SHAPE_ONLY_OPS | {"Slice", "Gather", "Pad", "Expand"}
SCALING_OPS = frozenset({"Mul", "Div"})
ACTIVATION_PRODUCTS = frozenset({"MatMul", "Einsum"})
# Ops whose output type is chosen by the node itself, so it can be switched instead of cast.
RETYPEABLE_SOURCES = frozenset({"Constant", "ConstantOfShape", "Cast"})
# Inputs that ONNX requires to stay float32 whatever the data type: op -> input indices.
FP32_ONLY_INPUTS = {"Resize": (1, 2), "Upsample": (1,)}
FP16_MAX = float(np.finfo(np.float16).max)


def convert_to_fp16(model, keep_fp32: tuple[str, ...] = ()):
    """Return an FP16-typed copy of ``model`` with the FP32 islands described in the module doc.

    Args:
        model: FP32 ``onnx.ModelProto`` (shapes inferable).
        keep_fp32: extra regular expressions; nodes whose name matches stay FP32.

    Returns:
        a new ModelProto whose inputs/outputs stay FP32.
    """
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    types, shapes = tensor_info(inferred)
    graph = inferred.graph
    keep = keep_fp32_nodes(graph, types, shapes, [re.compile(p) for p in keep_fp32])
    plan = TypePlan(graph, types, keep)
    plan.apply()
    del graph.value_info[:]
    return onnx.shape_inference.infer_shapes(inferred)


def tensor_info(model) -> tuple[dict, dict]:
    """(name -> elem_type, name -> shape list with None for unknown dims) for every typed tensor."""
    types, shapes = {}, {}
    graph = model.graph
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        tensor = value.type.tensor_type
        types[value.name] = tensor.elem_type
        if tensor.HasField("shape"):
            shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    for init in graph.initializer:
        types[init.name] = init.data_type
        shapes[init.name] = list(init.dims)
    return types, shapes


def is_float(types: dict, name: str) -> bool:
    import onnx

    return bool(name) and types.get(name) == onnx.TensorProto.FLOAT


def keep_fp32_nodes(graph, types: dict, shapes: dict, patterns: list) -> set:
    """Names (or output-0 keys) of the nodes that stay FP32."""
    consumers = consumer_map(graph)
    constants = {t.name for t in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    keep = set()
    product_tensors: set = set()  # outputs of activation products and of what only moves or scales them
    for node in graph.node:  # ONNX nodes are topologically sorted
        if follows_product(node, product_tensors, constants, types):
            product_tensors.update(node.output)
            keep.add(node_key(node))
        elif (
            node.op_type in KEEP_FP32_OPS
            or any(p.search(node.name) for p in patterns)
            or touches_single_channel_map(node, types, shapes)
            or (node.op_type == "Mul" and feeds_kept_reduction(node, consumers))
        ):
            keep.add(node_key(node))
    return keep


def follows_product(node, product_tensors: set, constants: set, types: dict) -> bool:
    """An activation x activation matrix product, or a move/slice/constant scaling of one."""
    float_inputs = [name for name in node.input if is_float(types, name)]
    if node.op_type in ACTIVATION_PRODUCTS:
        return len(float_inputs) >= 2 and not any(name in constants for name in float_inputs)
    if not float_inputs or float_inputs[0] not in product_tensors:
        return False
    if node.op_type in PASSTHROUGH_OPS:
        return True
    return node.op_type in SCALING_OPS and all(name in constants for name in float_inputs[1:])


def node_key(node) -> str:
    return node.name or node.output[0]


def consumer_map(graph) -> dict:
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def touches_single_channel_map(node, types: dict, shapes: dict) -> bool:
    """True when a float (N, 1, H, W) tensor enters or leaves the node: a disparity-like map."""
    for name in list(node.input) + list(node.output):
        shape = shapes.get(name)
        if is_float(types, name) and shape is not None and len(shape) == 4 and shape[1] == 1:
            return True
    return False


def feeds_kept_reduction(node, consumers: dict) -> bool:
    """True when the node's output reaches a kept reduction/softmax through reshapes only."""
    frontier = list(node.output)
    while frontier:
        for consumer in consumers.get(frontier.pop(), []):
            if consumer.op_type in KEEP_FP32_OPS:
                return True
            if consumer.op_type in SHAPE_ONLY_OPS:
                frontier.extend(consumer.output)
    return False


class TypePlan:
    """Assigns FP16/FP32 to every float tensor and rewrites the graph with the casts it needs."""

    def __init__(self, graph, types: dict, keep: set) -> None:
        import onnx

        self.onnx = onnx
        self.graph = graph
        self.types = types
        self.keep = keep
        self.consumers = consumer_map(graph)
        self.initializers = {init.name: init for init in graph.initializer}
        self.new_types = {}
        self.casts = {}
        self.nodes = []

    def wants_fp16(self, node) -> bool:
        return node_key(node) not in self.keep

    def required_type(self, node, index: int) -> int | None:
        """The float type input ``index`` of ``node`` must have, or None when it is not a float input."""
        name = node.input[index]
        if not is_float(self.types, name) or index in FP32_ONLY_INPUTS.get(node.op_type, ()):
            return None
        return self.onnx.TensorProto.FLOAT16 if self.wants_fp16(node) else self.onnx.TensorProto.FLOAT

    def apply(self) -> None:
        FLOAT, FLOAT16 = self.onnx.TensorProto.FLOAT, self.onnx.TensorProto.FLOAT16
        for value in self.graph.input:
            self.new_types[value.name] = self.types.get(value.name)
        self.retype_initializers()
        for node in self.graph.node:
            for index in range(len(node.input)):
                required = self.required_type(node, index)
                if required is not None:
                    node.input[index] = self.typed_input(node.input[index], required)
            self.retype_outputs(node, FLOAT, FLOAT16)
            self.nodes.append(node)
        self.restore_output_types(FLOAT)
        del self.graph.node[:]
        self.graph.node.extend(self.nodes)

    def retype_initializers(self) -> None:
        """Convert float initializers whose every float consumer wants FP16; others stay FP32."""
        from onnx import numpy_helper

        for name, init in self.initializers.items():
            if init.data_type != self.onnx.TensorProto.FLOAT:
                self.new_types[name] = init.data_type
                continue
            wanted = self.consumer_types(name)
            if wanted == {self.onnx.TensorProto.FLOAT16}:
                init.CopyFrom(numpy_helper.from_array(to_fp16(numpy_helper.to_array(init)), name))
                self.new_types[name] = self.onnx.TensorProto.FLOAT16
            else:
                self.new_types[name] = self.onnx.TensorProto.FLOAT

    def consumer_types(self, name: str) -> set:
        wanted = set()
        for consumer in self.consumers.get(name, []):
            for index, input_name in enumerate(consumer.input):
                if input_name == name:
                    wanted.add(self.required_type(consumer, index))
        return wanted

    def retype_outputs(self, node, FLOAT: int, FLOAT16: int) -> None:
        """Set the new type of each float output; switch retypeable sources instead of casting them."""
        if node.op_type in RETYPEABLE_SOURCES:
            self.retype_source(node, FLOAT, FLOAT16)
            return
        for name in node.output:
            if is_float(self.types, name):
                self.new_types[name] = FLOAT16 if self.wants_fp16(node) else FLOAT
            else:
                self.new_types[name] = self.types.get(name)

    def retype_source(self, node, FLOAT: int, FLOAT16: int) -> None:
        from onnx import numpy_helper

        name = node.output[0]
        if not is_float(self.types, name) or self.consumer_types(name) != {FLOAT16}:
            self.new_types[name] = self.types.get(name)
            return
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to":
                attr.i = FLOAT16
            elif attr.name == "value" and attr.t.data_type == FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(to_fp16(numpy_helper.to_array(attr.t)), attr.t.name))
        self.new_types[name] = FLOAT16

    def typed_input(self, name: str, required: int) -> str:
        """``name`` itself when it already has the required type, else a (shared) Cast of it."""
        if self.new_types.get(name) == required:
            return name
        key = (name, required)
        if key not in self.casts:
            suffix = "fp16" if required == self.onnx.TensorProto.FLOAT16 else "fp32"
            cast_name = f"{name}_cast_{suffix}"
            self.nodes.append(self.onnx.helper.make_node("Cast", [name], [cast_name], name=cast_name, to=required))
            self.new_types[cast_name] = required
            self.casts[key] = cast_name
        return self.casts[key]

    def restore_output_types(self, FLOAT: int) -> None:
        """Graph outputs produced in FP16 get a final Cast so the model's interface stays FP32."""
        for output in self.graph.output:
            if self.types.get(output.name) != FLOAT or self.new_types.get(output.name) == FLOAT:
                continue
            inner = f"{output.name}_fp16"
            for node in self.nodes:
                node.output[:] = [inner if o == output.name else o for o in node.output]
                node.input[:] = [inner if i == output.name else i for i in node.input]
            self.nodes.append(self.onnx.helper.make_node("Cast", [inner], [output.name], name=f"{output.name}_cast_fp32",
                                                         to=FLOAT))


def to_fp16(array: np.ndarray) -> np.ndarray:
    """Clip to FP16's finite range before converting (an inf weight would poison the engine)."""
    return np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16)
