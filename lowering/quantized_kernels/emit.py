"""How the ops of a quantized-kernel dialect (`ops.declare_dialect`) become torch calls.

A backend takes the emission table of its dialect from `emission_of(dialect)` in its
emission module and hands it over (`Backend(emission=...)`). Weights are prepacked here, once, while the module is built: a
`conv_prepack` becomes a packed-params object registered on the module (a
`get_attr`), under the engine the op names, so the running module only calls
kernels. Quantized values are torch quantized tensors (`quint8`); the parameters of
each kernel's output are read off its result type. A dialect may name the engine its
kernels must run under (`emission_of(dialect, run_engine=...)`): its calls then
switch to that engine and back (`on_engine`).
"""

from __future__ import annotations

import contextlib

import torch
from torch.fx import Node

from qir.dialects.aten import AtenOp, resolve_overload
from qir.dialects.quant import QuantizedType, UniformQuantizedPerAxisType
from qir.dialects.ref import per_tensor, quantized
from qir.emitter import Emission, Emitter, EmitRule
from qir.errors import QirError
from qir.lowering.quantized_kernels import ops as k

_quantized = torch.ops.quantized
_aten = torch.ops.aten

_RULES: dict[str, EmitRule] = {}


def _rule(*kernels: str):
    """Register the emission of the ops named `kernels` (in any dialect declared from `ops`)."""

    def register(rule: EmitRule) -> EmitRule:
        for kernel in kernels:
            _RULES[kernel] = rule
        return rule

    return register


_RUN_ENGINES: dict[str, str] = {}
"""Dialect name -> the quantized engine its kernels run under (see `emission_of`)."""


def emission_of(dialect, run_engine: str | None = None) -> Emission:
    """The emission of every op of `dialect` (a dialect made by `ops.declare_dialect`).

    `run_engine` names the quantized engine that must be active while the dialect's kernels
    *run*, not only when its weights are packed: torch picks some implementations by the
    global engine at call time (`quantized::add`, `hardswish`, the pools, `relu` and `clamp`
    of a quantized tensor take QNNPACK's code only while the engine is `qnnpack`). Each kernel
    call is then emitted as `on_engine(run_engine, kernel, *args)`, which restores the caller's
    engine afterwards. Without it (x86), kernels run under whatever engine is set."""
    if run_engine is not None:
        if run_engine not in k.ENGINES:
            raise ValueError(f"unknown engine {run_engine!r} (engines: {', '.join(k.ENGINES)})")
        _RUN_ENGINES[dialect.name] = run_engine
    emission = Emission()
    for op in dialect.operations:
        emission.rule(op.name)(_RULES[op.name.split(".", 1)[1]])
        if issubclass(op, k.FromStorage):
            emission.fold(op.name)(_fold_from_storage)
    return emission


QTENSOR_DTYPES = {"uint8": torch.quint8, "int8": torch.qint8, "int32": torch.qint32}


def qtensor_dtype(qtype: QuantizedType) -> torch.dtype:
    dtype = QTENSOR_DTYPES.get(qtype.storage_dtype_name)
    if dtype is None:
        raise QirError(f"torch has no quantized tensors of {qtype.storage_dtype_name} storage")
    return dtype


def to_qtensor(storage: torch.Tensor, qtype: QuantizedType) -> torch.Tensor:
    """The torch quantized tensor whose integer representation is `storage`."""
    if isinstance(qtype, UniformQuantizedPerAxisType):  # its tables' bytes are native float64 / int64
        scales = torch.frombuffer(bytearray(qtype.scales_attr.data.data), dtype=torch.float64)
        zero_points = torch.frombuffer(bytearray(qtype.zero_points_attr.data.data), dtype=torch.int64)
        return torch._make_per_channel_quantized_tensor(storage, scales, zero_points, qtype.axis)
    return torch._make_per_tensor_quantized_tensor(storage, qtype.scale, qtype.zero_point)


@contextlib.contextmanager
def packing_for(engine: str):
    """Pack weights with `torch.backends.quantized.engine = engine` (packed weights belong to the
    engine that packed them, and each kernel then runs on that engine's implementation), below
    autograd: the prepack ops read a per-channel weight's scales and zero points one element at
    a time (`q_per_channel_scales()[i].item()`), each read a dispatch through the autograd keys,
    which packed weights never need. Skipping them packs a 64x64 per-channel weight for oneDNN
    in 180 us instead of 230 us; the packed weights are the same."""
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        with torch._C._AutoDispatchBelowADInplaceOrView():
            yield
    finally:
        torch.backends.quantized.engine = previous


def on_engine(engine: str, kernel, *args):
    """`kernel(*args)` with `torch.backends.quantized.engine = engine`, the caller's engine restored
    afterwards (also when the kernel raises): a lowered module leaves the global engine as it
    found it. Emitted as an FX call, so `gm.code` shows which engine each kernel runs under."""
    previous = torch.backends.quantized.engine
    if previous == engine:
        return kernel(*args)
    torch.backends.quantized.engine = engine
    try:
        return kernel(*args)
    finally:
        torch.backends.quantized.engine = previous


def _output_qparams(op) -> tuple[float, int]:
    qtype = per_tensor(op.output)
    return qtype.scale, qtype.zero_point


def _constant(em: Emitter, op, value, what: str) -> torch.Tensor:
    tensor = em.constant(value)
    if tensor is None:
        raise QirError(f"{op.name}: the {what} must be a parameter (it is prepacked when the module is built)")
    return tensor


def _float_bias(em: Emitter, op) -> torch.Tensor:
    """The bias as the kernels take it, in float: an i32 bias times its scale (input x weight)."""
    bias = _constant(em, op, op.bias, "bias")
    if bias.is_floating_point():
        return bias.float()
    if op.input_scale is None:
        raise QirError(f"{op.name}: an integer bias needs input_scale")
    weight_type = quantized(op.weight)
    scales = (torch.tensor(weight_type.scales, dtype=torch.float64)
              if isinstance(weight_type, UniformQuantizedPerAxisType) else torch.tensor(weight_type.scale))
    return (bias.double() * op.input_scale.value.data * scales).float()


def _packed_attr(em: Emitter, op, packed) -> Node:
    """A packing of `op`'s weight, registered on the module under the weight's name."""
    name = (op.weight.name_hint or "weight").removeprefix("p_")
    return em.new_attr(f"packed.{name}", packed)


def _packed(em: Emitter, op, packed) -> None:
    em.nodes[op.output] = _packed_attr(em, op, packed)


@_rule("conv_prepack")
def _emit_conv_prepack(em: Emitter, op: k.ConvPrepack) -> None:
    if _packed_for_pointwise(op) or _packed_per_output(op):
        return  # its readers pack it (`_emit_conv_fp32`, `_emit_requantizing`)
    _packed(em, op, _pack_conv(em, op))


def _pack_conv(em: Emitter, op: k.ConvPrepack):
    weight = to_qtensor(_constant(em, op, op.weight, "weight"), quantized(op.weight))
    bias = _float_bias(em, op)
    spatial = weight.dim() - 2
    stride, padding, dilation = (list(getattr(op, k).get_values()) for k in ("stride", "padding", "dilation"))
    groups = op.groups.value.data
    transposed = op.transposed is not None and bool(op.transposed.value.data)
    with packing_for(op.engine.data):
        if transposed:
            output_padding = list(op.output_padding.get_values()) if op.output_padding is not None else [0] * spatial
            prepack = getattr(_quantized, f"conv_transpose{spatial}d_prepack")
            return prepack(weight, bias, stride, padding, output_padding, dilation, groups)
        prepack = getattr(_quantized, f"conv{spatial}d_prepack")
        return prepack(weight, bias, stride, padding, dilation, groups)


@_rule("linear_prepack")
def _emit_linear_prepack(em: Emitter, op: k.LinearPrepack) -> None:
    if _packed_for_pointwise(op) or _packed_per_output(op):
        return  # its readers pack it (`_emit_linear_fp32`, `_emit_requantizing`)
    _packed(em, op, _pack_linear(em, op))


def _pack_linear(em: Emitter, op: k.LinearPrepack):
    weight = to_qtensor(_constant(em, op, op.weight, "weight"), quantized(op.weight))
    bias = _float_bias(em, op)
    with packing_for(op.engine.data):
        return _quantized.linear_prepack(weight, bias)


def _packed_per_output(prepack) -> bool:
    """Whether `prepack`'s readers need a packing each per output scale and zero point: QNNPACK's
    packed weights keep the requantization of the first kernel that ran them (torch recomputes
    it when the input scale changes, not the output's), so a weight shared by layers whose
    outputs are quantized differently (a recurrent cell's steps) is packed once per output."""
    if prepack.engine.data != "qnnpack":
        return False
    outputs = {_output_qparams(use.operation) for use in prepack.output.uses
               if quantized(use.operation.results[0]) is not None}
    return len(outputs) > 1


def _call(em: Emitter, op, target, args: tuple) -> None:
    em.bind(op, em.call(target, args, name=op.output.name_hint))


def _call_kernel(em: Emitter, op, target, args: tuple) -> None:
    """A call of a kernel on quantized tensors: under the dialect's run engine, if it has one."""
    engine = _RUN_ENGINES.get(op.name.split(".", 1)[0])
    if engine is None:
        _call(em, op, target, args)
    else:
        _call(em, op, on_engine, (engine, target, *args))


def _nodes(em: Emitter, op) -> tuple[Node, ...]:
    return tuple(em.node(v) for v in op.operands)


# Kernels called as kernel(*operands, output scale, output zero point).
_REQUANTIZING = {
    "conv1d": _quantized.conv1d.default, "conv1d_relu": _quantized.conv1d_relu.default,
    "conv2d": _quantized.conv2d.new, "conv2d_relu": _quantized.conv2d_relu.new,
    "conv3d": _quantized.conv3d.new, "conv3d_relu": _quantized.conv3d_relu.new,
    "conv_transpose1d": _quantized.conv_transpose1d.default,
    "conv_transpose2d": _quantized.conv_transpose2d.default,
    "conv_transpose3d": _quantized.conv_transpose3d.default,
    "linear": _quantized.linear.default, "linear_relu": _quantized.linear_relu.default,
    "add": _quantized.add.default, "add_relu": _quantized.add_relu.default,
    "mul": _quantized.mul.default, "mul_relu": _quantized.mul_relu.default,
    "matmul": _quantized.matmul.default,
    "hardswish": _quantized.hardswish.default, "sigmoid": _quantized.sigmoid.default,
}


def _emit_requantizing(em: Emitter, op) -> None:
    # Operands are declared in each kernel's own order: (qx, [qaccum,] packed) or (qa, qb).
    nodes = [_kernel_operand(em, value, op) for value in op.operands]
    _call_kernel(em, op, _REQUANTIZING[k.kernel_name(op)], (*nodes, *_output_qparams(op)))


def _kernel_operand(em: Emitter, value, op) -> Node:
    """The node `op` reads for `value`: for a weight packed per output (`_packed_per_output`), the
    packing made for `op`'s output parameters, once for every kernel with those."""
    prepack = value.owner
    if not isinstance(prepack, k.LinearPrepack | k.ConvPrepack) or not _packed_per_output(prepack):
        return em.node(value)
    pack = _pack_linear if isinstance(prepack, k.LinearPrepack) else _pack_conv
    return em.once((prepack, _output_qparams(op)), lambda: _packed_attr(em, prepack, pack(em, prepack)))


_rule(*_REQUANTIZING)(_emit_requantizing)


def conv2d_add_onednn(qx, qaccum, packed, scale: float, zero_point: int, relu: bool, copy: bool):
    """oneDNN's conv + add (+ relu): the kernel runs only while the quantized engine is oneDNN
    (its weights were packed by oneDNN), so the engine is switched for the call. oneDNN sums into
    the accumulator's buffer: `copy` protects an accumulator that is read again (or is the input)."""
    if copy:
        qaccum = qaccum.clone()
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = "onednn"
    try:
        kernel = _quantized.conv2d_add_relu if relu else _quantized.conv2d_add
        return kernel.default(qx, qaccum, packed, scale, zero_point)
    finally:
        torch.backends.quantized.engine = previous


@_rule("conv2d_add", "conv2d_add_relu")
def _emit_conv2d_add(em: Emitter, op) -> None:
    _call(em, op, conv2d_add_onednn, (*_nodes(em, op), *_output_qparams(op), op.name.endswith("_relu"),
                                      op.addend is op.input or _read_later(em, op.addend, op)))


def _read_later(em: Emitter, value, op) -> bool:
    """Whether an op emitted after `op` reads `value` (ops are emitted in order: a later reader's
    results are not mapped yet; the return, which has none, comes last)."""
    return any(use.operation is not op and (not use.operation.results
                                            or use.operation.results[0] not in em.nodes)
               for use in value.uses)


@_rule("linear_fp32", "linear_relu_fp32", "linear_gelu_fp32", "linear_add_fp32")
def _emit_linear_fp32(em: Emitter, op) -> None:
    """fbgemm's float-output linear for fbgemm/x86-packed weights; for oneDNN-packed ones
    oneDNN's `qlinear_pointwise` (float32 out, relu, gelu or an add fused), which the x86
    inductor lowering also calls: 1.3-2x faster at BERT's shapes
    (`bench/onednn_linear.py`). It takes the input's integer storage, quantized
    once for all the linears reading it, and leaves its readers' storage itself when they all
    quantize its result alike (`_quantized_result`)."""
    scale, zero_point = op.input_scale.value.data, op.input_zero_point.value.data
    post = k.kernel_name(op).removeprefix("linear").removesuffix("_fp32").lstrip("_") or "none"
    prepack = op.packed.owner
    if not _onednn_packed(prepack):
        if post in ("gelu", "add"):
            raise QirError(f"{op.name}: a fused {post} needs oneDNN-packed weights (engine \"onednn\")")
        kernel = (_quantized.linear_with_input_q_dq_qweight_dq_relu_output_fp32 if post == "relu"
                  else _quantized.linear_with_input_q_dq_qweight_dq_output_fp32)
        _call(em, op, kernel.default, (em.node(op.input), scale, zero_point, em.node(op.packed)))
        return
    weight, scales, zero_points, bias = _pointwise_weights(em, prepack, scale, zero_point)
    x = (_storage(em, op), scale, zero_point, weight, scales, zero_points)
    if post == "add":
        # oneDNN reads a float addend as if it were contiguous (a transposed view comes out wrong).
        addend = em.call(_aten.contiguous.default, (em.node(op.addend),))
        binary = "sum" if _may_sum_into(em, op.addend, op) else "add"
        if binary == "sum":  # written in place, which a tensor autograd tracks refuses; the int8 sum has no gradient
            addend = em.call(_aten.detach.default, (addend,))
        _call(em, op, torch.ops.onednn.qlinear_pointwise.binary,
              (*x, addend, bias, 1.0, 0, torch.float32, 1.0, 0, binary, 1.0, "none", [], ""))
        return
    output = _quantized_result(op)
    output = (*output, None) if output is not None else (1.0, 0, torch.float32)
    algorithm = op.approximate.data if op.approximate is not None else ("none" if post == "gelu" else "")
    _call(em, op, torch.ops.onednn.qlinear_pointwise.default, (*x, bias, *output, post, [], algorithm))


def _quantized_result(op) -> tuple[float, int] | None:
    """(scale, zero point) when every reader of oneDNN float-output kernel `op` is a oneDNN
    float-output kernel of its kind (linear or conv) that quantizes it, as its input, with those
    parameters (FFN2 reading FFN1's gelu, a conv reading a conv + silu): `op` then leaves that
    uint8 storage itself, rounded once as torch's quantize rounds, and no float tensor is made."""
    if isinstance(op, k.LinearAddFloatKernel) or not _onednn_packed(op.packed.owner):
        return None  # (a residual add's result may be its addend's buffer: float, as that one is)
    kind = k.ConvFloatKernel if isinstance(op, k.ConvFloatKernel) else (k.LinearFloatKernel, k.LinearAddFloatKernel)
    readers = [use.operation for use in op.output.uses]
    if not readers or not all(use.index == 0 and isinstance(use.operation, kind)
                              and _onednn_packed(use.operation.packed.owner) for use in op.output.uses):
        return None
    params = {(r.input_scale.value.data, r.input_zero_point.value.data) for r in readers}
    if len(params) != 1:
        return None
    scale, zero_point = params.pop()
    return (scale, zero_point) if 0 <= zero_point <= 255 else None


def _may_sum_into(em: Emitter, value, op) -> bool:
    """Whether `op` may add its result into `value`'s buffer (oneDNN's in-place sum): `value` is a
    fresh tensor this module made (an ATen result its schema says aliases nothing, or a
    float-output kernel's), `op` is its last reader, and no earlier reader made a view of it."""
    source = value.owner
    if isinstance(source, AtenOp):
        if not _fresh(source):
            return False
    elif not isinstance(source, k.FloatKernel) or isinstance(source, k.LinearAddFloatKernel):
        return False
    for use in value.uses:
        reader = use.operation
        if reader is op:
            continue  # as its input too, it reads a quantized copy (`_storage`), made before
        emitted = bool(reader.results) and reader.results[0] in em.nodes
        if not emitted or not (isinstance(reader, k.FloatKernel | k.Quantize)
                               or (isinstance(reader, AtenOp) and _fresh(reader))):
            return False
    return True


def _fresh(op: AtenOp) -> bool:
    """Whether an ATen op's results are new tensors: its schema marks no result as an alias."""
    overload = resolve_overload(op.target.data)
    return overload is not None and all(r.alias_info is None for r in overload._schema.returns)


def _onednn_packed(prepack) -> bool:
    """Whether a float-output kernel reading `prepack` runs as oneDNN's `qlinear_pointwise` /
    `qconv*_pointwise` (weights packed oneDNN's way, once per prepack: `_pointwise_weights`)."""
    return isinstance(prepack, k.LinearPrepack | k.ConvPrepack) and prepack.engine.data == "onednn"


def _packed_for_pointwise(prepack) -> bool:
    """Whether oneDNN-packed weights feed only float-output kernels, so that `quantized.*`'s own
    packing is never needed. A weight shared by layers may feed both kinds (a recurrent cell's
    last step is read in float, its others requantized): both packings are made then."""
    return _onednn_packed(prepack) and all(isinstance(use.operation, k.FloatKernel) for use in prepack.output.uses)


def _geometry(prepack: k.ConvPrepack) -> list:
    return [*(list(getattr(prepack, n).get_values()) for n in ("stride", "padding", "dilation")),
            prepack.groups.value.data]


@_rule("conv1d_fp32", "conv2d_fp32", "conv3d_fp32")
def _emit_conv_fp32(em: Emitter, op: k.ConvFloatKernel) -> None:
    """oneDNN's convolution with a float32 result, reading its input's storage (`_storage`)."""
    prepack = op.packed.owner
    if not _onednn_packed(prepack):
        raise QirError(f"{op.name}: needs oneDNN-packed weights (an x86.conv_prepack with engine \"onednn\")")
    scale, zero_point = op.input_scale.value.data, op.input_zero_point.value.data
    weight, scales, zero_points, bias = _pointwise_weights(em, prepack, scale, zero_point)
    kernel = getattr(torch.ops.onednn, f"q{k.kernel_name(op).removesuffix('_fp32')}_pointwise").default
    post = op.post.data if op.post is not None else "none"
    args = (_storage(em, op), scale, zero_point, weight, scales, zero_points, bias, *_geometry(prepack))
    output = _quantized_result(op)
    if output is not None:  # the next convs' input: channels-last, as they read it best
        _call(em, op, kernel, (*args, *output, None, post, [], ""))
        return
    node = em.call(kernel, (*args, 1.0, 0, torch.float32, post, [], ""), name=op.output.name_hint)
    # oneDNN leaves channels-last tensors; float code after a float conv may `view` them.
    _call(em, op, _aten.contiguous.default, (node,))


def _pointwise_weights(em: Emitter, prepack, x_scale: float, x_zero_point: int) -> tuple:
    """(packed weight, scales, zero points, float bias) nodes of a oneDNN pointwise kernel, made
    once per prepack op whatever number of kernels read it."""

    def make() -> tuple:
        weight = _constant(em, prepack, prepack.weight, "weight")
        qtype = quantized(prepack.weight)
        scales = torch.tensor(getattr(qtype, "scales", None) or [qtype.scale], dtype=torch.float32)
        if isinstance(prepack, k.ConvPrepack):
            packed = torch.ops.onednn.qconv_prepack(weight, scales, x_scale, x_zero_point, *_geometry(prepack), None)
        else:
            packed = torch.ops.onednn.qlinear_prepack(weight, None)
        name = (prepack.weight.name_hint or "weight").removeprefix("p_")
        return (em.new_attr(f"packed.{name}", packed), em.new_attr(f"packed.{name}_scales", scales),
                em.new_attr(f"packed.{name}_zero_points", torch.zeros(scales.shape, dtype=torch.int64)),
                em.new_attr(f"biases.{name}", _float_bias(em, prepack)))

    return em.once(prepack, make)


def storage_of(q: torch.Tensor) -> torch.Tensor:
    """The uint8 storage of a quantized tensor, as a view of its memory (`int_repr()` copies,
    at 4x a quantization's own time)."""
    return torch.empty(0, dtype=torch.uint8).set_(q.untyped_storage(), q.storage_offset(), q.size(), q.stride())


def quantize_to_storage(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """The uint8 storage of `x` quantized as `x86.quantize` does (torch's own rounding)."""
    return storage_of(torch.quantize_per_tensor(x, scale, zero_point, torch.quint8))


def _quantized_source(linear):
    """The quantized tensor a oneDNN float-output kernel's input is the dequantization of, when
    it has the kernel's input parameters: the kernel then reads its storage as it is."""
    source = linear.input.owner
    if not isinstance(source, k.Dequantize) or not _onednn_packed(linear.packed.owner):
        return None
    qtype = per_tensor(source.input)
    if qtype is None or qtype.storage_dtype_name != "uint8" or (qtype.scale, qtype.zero_point) != (
            linear.input_scale.value.data, linear.input_zero_point.value.data):
        return None
    return source.input


def _storage(em: Emitter, op) -> Node:
    """The uint8 storage a oneDNN float-output kernel reads, shared by the kernels reading one input."""
    producer = op.input.owner
    if isinstance(producer, k.FloatKernel) and _quantized_result(producer) is not None:
        return em.node(op.input)  # the producer left it
    source = _quantized_source(op)
    if source is not None:
        return em.once((em.node(source),), lambda: em.call(
            storage_of, (em.node(source),), name=f"{source.name_hint or 'x'}_storage"))
    key = (em.node(op.input), op.input_scale.value.data, op.input_zero_point.value.data)
    return em.once(key, lambda: em.call(quantize_to_storage, key, name=f"{op.input.name_hint or 'x'}_storage"))


@_rule("quantize")
def _emit_quantize(em: Emitter, op: k.Quantize) -> None:
    qtype = per_tensor(op.output)
    _call(em, op, torch.quantize_per_tensor, (em.node(op.input), qtype.scale, qtype.zero_point,
                                              qtensor_dtype(qtype)))


@_rule("from_storage")
def _emit_from_storage(em: Emitter, op: k.FromStorage) -> None:
    storage = _constant(em, op, op.input, "operand")
    name = op.output.name_hint or "qconstant"
    em.nodes[op.output] = em.new_attr(f"qconstants.{name}", to_qtensor(storage, quantized(op.output)))


def _fold_from_storage(em: Emitter, op: k.FromStorage, inputs: list) -> torch.Tensor:
    return inputs[0]  # at emission, quantized values are their storage, as in the parameter store


@_rule("dequantize")
def _emit_dequantize(em: Emitter, op: k.Dequantize) -> None:
    if op.output.uses and all(isinstance(use.operation, k.FloatKernel)
                              and _quantized_source(use.operation) is op.input for use in op.output.uses):
        return  # its readers take the quantized tensor's storage (`_storage`)
    # Quantized convs leave channels-last tensors; float code after them may `view` them, which
    # the exported program did on contiguous tensors (`contiguous` is free when it already is).
    values = em.call(_aten.dequantize.self, (em.node(op.input),))
    _call(em, op, _aten.contiguous.default, (values,))


@_rule("requantize")
def _emit_requantize(em: Emitter, op: k.Requantize) -> None:
    qtype = per_tensor(op.output)
    float_node = em.call(_aten.dequantize.self, (em.node(op.input),))
    _call(em, op, torch.quantize_per_tensor, (float_node, qtype.scale, qtype.zero_point, qtensor_dtype(qtype)))


@_rule("cat")
def _emit_cat(em: Emitter, op: k.Cat) -> None:
    _call_kernel(em, op, _quantized.cat.default, (list(_nodes(em, op)), op.dim.value.data, *_output_qparams(op)))


@_rule("relu")
def _emit_relu(em: Emitter, op: k.Relu) -> None:
    _call_kernel(em, op, _aten.relu.default, (em.node(op.input),))


@_rule("clamp")
def _emit_clamp(em: Emitter, op: k.Clamp) -> None:
    _call_kernel(em, op, _aten.clamp.default, (em.node(op.input), op.min.value.data, op.max.value.data))


@_rule("avg_pool")
def _emit_avg_pool(em: Emitter, op: k.AvgPool) -> None:
    spatial = len(op.kernel_size.get_values())
    args = [list(op.kernel_size.get_values()), list(op.stride.get_values()), list(op.padding.get_values()),
            _flag(op.ceil_mode, False), _flag(op.count_include_pad, True)]
    if spatial > 1:
        args.append(op.divisor_override.value.data if op.divisor_override is not None else None)
    elif op.divisor_override is not None:
        raise QirError(f"{op.name}: avg_pool1d takes no divisor_override")
    _pool(em, op, getattr(_aten, f"avg_pool{spatial}d").default, args)


def _flag(attr, default: bool) -> bool:
    return default if attr is None else bool(attr.value.data)


def _pool(em: Emitter, op, pool, args: list) -> None:
    """A pooling of a quantized tensor. With the result's parameters those of the input, torch's
    quantized kernel (a rounded window mean); otherwise the mean of the dequantized tensor
    quantized once to the result's parameters, not rounded twice."""
    qtype = per_tensor(op.output)
    if qtype == per_tensor(op.input):
        _call_kernel(em, op, pool, (em.node(op.input), *args))
        return
    pooled = em.call(pool, (em.call(_aten.dequantize.self, (em.node(op.input),)), *args))
    _call(em, op, torch.quantize_per_tensor, (pooled, qtype.scale, qtype.zero_point, qtensor_dtype(qtype)))


@_rule("adaptive_avg_pool")
def _emit_adaptive_avg_pool(em: Emitter, op: k.AdaptiveAvgPool) -> None:
    size = list(op.output_size.get_values())
    _pool(em, op, getattr(_aten, f"adaptive_avg_pool{len(size)}d").default, [size])


@_rule("lookup")
def _emit_lookup(em: Emitter, op: k.Lookup) -> None:
    from qir.emit_ref import lookup_table

    in_type, out_type = per_tensor(op.input), per_tensor(op.output)
    table = em.new_attr(f"tables.{op.output.name_hint or 'lookup'}",
                        lookup_table(in_type, out_type, op.fn.data, op.fn_args))
    storage = em.call(_aten.int_repr.default, (em.node(op.input),))
    index = em.call(_aten.sub.Tensor, (em.call(_aten._to_copy.default, (storage,), {"dtype": torch.int64}),
                                       in_type.storage_min))
    values = em.call(_aten.take.default, (table, index))
    _call(em, op, _aten._make_per_tensor_quantized_tensor.default, (values, out_type.scale, out_type.zero_point))
