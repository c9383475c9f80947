"""The kinds of op of torch's quantized CPU kernels (`torch.ops.quantized.*`), and dialects of them.

Several backends run these kernels: `x86` under the x86 engine (fbgemm and oneDNN),
`qnnpack` under QNNPACK. Each has a dialect of its own, named like it, whose ops are
made here from one table (`KERNELS`), so that the kernels are described once:

    X86 = declare_dialect("x86")                         # x86.conv2d_relu, x86.linear, ...
    QNNPACK = declare_dialect("qnnpack", exclude={...})  # the kernels QNNPACK lacks left out

Values of a quantized type are torch quantized tensors (`quint8`) in these dialects,
not their integer storage: every kernel takes and returns them, so consecutive
kernels pass activations along without a dequantize/quantize round trip.
`quantize`/`dequantize` are the ways in and out for activations, `from_storage`
for quantized weights and constants (the parameter store keeps their integer
storage). Weights are prepacked once, when the program is emitted (`conv_prepack`,
`linear_prepack` take the int8 weight and its bias, and give a packed type):

    %q = x86.quantize(%x) : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8x!quant.uniform<u8:f32, 0.02:128>>
    %p = x86.conv_prepack(%w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>,
           dilation = array<i64: 1, 1>, groups = 1 : i64, engine = "x86"} : (...) -> !x86.packed_conv
    %y = x86.conv2d_relu(%q, %p) : (tensor<...x!quant.uniform<u8:f32, 0.02:128>>, !x86.packed_conv)
           -> tensor<1x4x8x8x!quant.uniform<u8:f32, 0.01>>

A requantizing kernel's output scale and zero point are those of its result type.
An op is identified by its kind (its base class here) and its kernel name, the part of
its name after the dialect's (`conv2d_relu`): emission (`emit.py`) needs no more.
"""

from __future__ import annotations

from xdsl.dialects.builtin import (
    ArrayAttr,
    BoolAttr,
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
)
from xdsl.ir import Dialect, ParametrizedAttribute, TypeAttribute
from xdsl.irdl import (
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    var_operand_def,
)
from xdsl.utils.exceptions import VerifyException

from qir.dialects.kernel import KernelOp
from qir.dialects.ref import per_tensor, quantized

ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")


class PackedConv(ParametrizedAttribute, TypeAttribute):
    """Prepacked convolution weights (`Conv{1,2,3}dPackedParamsBase`)."""


class PackedLinear(ParametrizedAttribute, TypeAttribute):
    """Prepacked linear weights (`LinearPackedParamsBase`)."""


# --------------------------------------------------------------------------
# Into and out of quantized tensors.
# --------------------------------------------------------------------------


class Quantize(KernelOp):
    """`torch.quantize_per_tensor` to the result type's parameters."""

    input = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        if per_tensor(self.output) is None or quantized(self.input) is not None:
            raise VerifyException(f"{self.name}: quantizes a float tensor to a per-tensor quantized one")


class Dequantize(KernelOp):
    """`Tensor.dequantize()` of a quantized tensor."""

    input = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        if quantized(self.input) is None or quantized(self.output) is not None:
            raise VerifyException(f"{self.name}: dequantizes a quantized tensor to a float one")


class FromStorage(KernelOp):
    """A quantized weight or constant as a quantized tensor: the parameter store holds integer
    storage, the kernels take quantized tensors. Built once, when the module is built."""

    input = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        if quantized(self.input) is None or self.input.type != self.output.type:
            raise VerifyException(f"{self.name}: result and operand have the same quantized type")


class Requantize(KernelOp):
    """New parameters for a quantized tensor (dequantize, then quantize)."""

    input = operand_def(TensorType)
    output = result_def(TensorType)


# --------------------------------------------------------------------------
# Weight packing, done once at emission.
# --------------------------------------------------------------------------


class ConvPrepack(KernelOp):
    """`quantized.conv{1,2,3}d_prepack` / `conv_transpose{1,2,3}d_prepack` of an int8 weight and a
    bias. An i32 bias is turned back into float with `input_scale` times the weight scales."""

    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(PackedConv)

    stride = prop_def(DenseArrayBase)
    padding = prop_def(DenseArrayBase)
    dilation = prop_def(DenseArrayBase)
    groups = prop_def(IntegerAttr)
    transposed = opt_prop_def(BoolAttr)
    output_padding = opt_prop_def(DenseArrayBase)
    engine = prop_def(StringAttr)
    input_scale = opt_prop_def(FloatAttr)

    def verify_(self) -> None:
        if self.engine.data not in ENGINES:
            raise VerifyException(f"{self.name}: unknown engine {self.engine.data!r} (engines: {', '.join(ENGINES)})")


class LinearPrepack(KernelOp):
    """`quantized.linear_prepack` of an int8 weight and a bias (see `ConvPrepack`)."""

    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(PackedLinear)

    engine = prop_def(StringAttr)
    input_scale = opt_prop_def(FloatAttr)

    def verify_(self) -> None:
        if self.engine.data not in ENGINES:
            raise VerifyException(f"{self.name}: unknown engine {self.engine.data!r} (engines: {', '.join(ENGINES)})")


# --------------------------------------------------------------------------
# Kernels. A requantizing kernel's output scale and zero point are its result type's; which
# torch operator each op calls is the emission's business (`emit.py`).
# --------------------------------------------------------------------------


class Kernel(KernelOp):
    output = result_def(TensorType)

    def verify_(self) -> None:
        if per_tensor(self.output) is None:
            raise VerifyException(f"{self.name}: the result must be a per-tensor quantized tensor")


class ConvKernel(Kernel):
    input = operand_def(TensorType)
    packed = operand_def(PackedConv)


class ConvAddKernel(Kernel):
    input = operand_def(TensorType)
    addend = operand_def(TensorType)
    packed = operand_def(PackedConv)


class LinearKernel(Kernel):
    input = operand_def(TensorType)
    packed = operand_def(PackedLinear)


class BinaryKernel(Kernel):
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)


class UnaryKernel(Kernel):
    input = operand_def(TensorType)


class FloatKernel(KernelOp):
    """An int8 kernel between float tensors: it quantizes its float input itself (with
    `input_scale` / `input_zero_point`) and leaves float. (Each kind declares its operands
    itself: IRDL orders a subclass's operands before its base's.)"""

    output = result_def(TensorType)
    input_scale = prop_def(FloatAttr)
    input_zero_point = prop_def(IntegerAttr)

    def verify_(self) -> None:
        if quantized(self.input) is not None or quantized(self.output) is not None:
            raise VerifyException(f"{self.name}: takes and gives float tensors (it quantizes its input itself)")


class LinearFloatKernel(FloatKernel):
    input = operand_def(TensorType)
    packed = operand_def(PackedLinear)
    approximate = opt_prop_def(StringAttr)


class LinearAddFloatKernel(FloatKernel):
    """A float-output linear plus a float `addend` of its result's type (a transformer's residual),
    the add done by the kernel."""

    input = operand_def(TensorType)
    packed = operand_def(PackedLinear)
    addend = operand_def(TensorType)

    def verify_(self) -> None:
        super().verify_()
        if self.addend.type != self.output.type:
            raise VerifyException(f"{self.name}: the addend has the result's type")


class ConvFloatKernel(FloatKernel):
    input = operand_def(TensorType)
    packed = operand_def(PackedConv)
    post = opt_prop_def(StringAttr)

    def verify_(self) -> None:
        super().verify_()
        if self.post is not None and self.post.data not in CONV_FLOAT_POSTS:
            raise VerifyException(f"{self.name}: unknown post op {self.post.data!r} "
                                  f"(known: {', '.join(CONV_FLOAT_POSTS)})")


CONV_FLOAT_POSTS = ("relu", "swish", "hardswish")
"""The post ops oneDNN's float-output convolution fuses (oneDNN spells silu `swish`)."""


class Cat(Kernel):
    """`quantized.cat(qxs, dim, scale, zero_point)`."""

    inputs = var_operand_def(TensorType)
    dim = prop_def(IntegerAttr)


class Relu(KernelOp):
    """`aten.relu` of a quantized tensor: clamps at its zero point, keeps its parameters."""

    input = operand_def(TensorType)
    output = result_def(TensorType)


class Clamp(KernelOp):
    """`aten.clamp(qx, min, max)` (a hardtanh) of a quantized tensor, keeping its parameters."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    min = prop_def(FloatAttr)
    max = prop_def(FloatAttr)


class Lookup(KernelOp):
    """Any elementwise function, as `ref.lookup` defines it: a table indexed by the storage."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    fn = prop_def(StringAttr)
    fn_args = opt_prop_def(ArrayAttr)


class AvgPool(KernelOp):
    """`aten.avg_pool{1,2,3}d` of a quantized tensor (requantized if the result's parameters differ)."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    kernel_size = prop_def(DenseArrayBase)
    stride = prop_def(DenseArrayBase)
    padding = prop_def(DenseArrayBase)
    ceil_mode = opt_prop_def(BoolAttr)
    count_include_pad = opt_prop_def(BoolAttr)
    divisor_override = opt_prop_def(IntegerAttr)


class AdaptiveAvgPool(KernelOp):
    """`aten.adaptive_avg_pool{1,2}d` of a quantized tensor (requantized if the parameters differ)."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    output_size = prop_def(DenseArrayBase)


# Kernel name -> (kind, what it calls). The kernel name is the op's name within its dialect.
KERNELS: dict[str, tuple[type[KernelOp], str]] = {
    "quantize": (Quantize, "`torch.quantize_per_tensor` to the result type's parameters."),
    "dequantize": (Dequantize, "`Tensor.dequantize()` of a quantized tensor."),
    "from_storage": (FromStorage, FromStorage.__doc__),
    "requantize": (Requantize, Requantize.__doc__),
    "conv_prepack": (ConvPrepack, ConvPrepack.__doc__),
    "linear_prepack": (LinearPrepack, LinearPrepack.__doc__),
    **{name: (ConvKernel, f"`quantized.{name}(qx, packed, scale, zero_point)`.")
       for name in ("conv1d", "conv1d_relu", "conv2d", "conv2d_relu", "conv3d", "conv3d_relu",
                    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")},
    **{name: (ConvAddKernel, f"`quantized.{name}(qx, qaccum, packed, scale, zero_point)`: a conv plus a "
                             "residual (oneDNN-packed weights only).")
       for name in ("conv2d_add", "conv2d_add_relu")},
    **{name: (LinearKernel, f"`quantized.{name}(qx, packed, scale, zero_point)`, inputs of any rank.")
       for name in ("linear", "linear_relu")},
    "linear_fp32": (LinearFloatKernel, "`quantized.linear_with_input_q_dq_qweight_dq_output_fp32(x, input_scale, "
                                       "input_zero_point, packed)`: an int8 linear whose output stays float (it "
                                       "quantizes its float input itself)."),
    "linear_relu_fp32": (LinearFloatKernel, "The same with a fused relu."),
    "linear_gelu_fp32": (LinearFloatKernel, "The same with a fused gelu (`approximate` as the gelu's); "
                                            "oneDNN-packed weights only."),
    "linear_add_fp32": (LinearAddFloatKernel, "The same plus a float addend of the result's type (oneDNN's "
                                              "binary add or, into an addend nothing reads again, sum); "
                                              "oneDNN-packed weights only."),
    **{f"conv{rank}d_fp32": (ConvFloatKernel, f"oneDNN's `qconv{rank}d_pointwise` with a float32 result (and "
                                              "the `post` op fused), on oneDNN-packed weights: a convolution "
                                              "read in float.")
       for rank in (1, 2, 3)},
    **{name: (BinaryKernel, f"`quantized.{name}(qa, qb, scale, zero_point)`, broadcasting.")
       for name in ("add", "add_relu", "mul", "mul_relu", "matmul")},
    **{name: (UnaryKernel, f"`quantized.{name}(qx, scale, zero_point)`.") for name in ("hardswish", "sigmoid")},
    "cat": (Cat, Cat.__doc__),
    "relu": (Relu, Relu.__doc__),
    "clamp": (Clamp, Clamp.__doc__),
    "lookup": (Lookup, Lookup.__doc__),
    "avg_pool": (AvgPool, AvgPool.__doc__),
    "adaptive_avg_pool": (AdaptiveAvgPool, AdaptiveAvgPool.__doc__),
}


def kernel_name(op) -> str:
    """`conv2d_relu` for `x86.conv2d_relu`."""
    return op.name.split(".", 1)[1]


def declare_dialect(prefix: str, exclude: frozenset[str] | set[str] = frozenset()) -> Dialect:
    """The dialect `prefix` of every kernel of `KERNELS` but `exclude`, with its packed types
    (`!prefix.packed_conv`, `!prefix.packed_linear`)."""
    unknown = set(exclude) - set(KERNELS)
    if unknown:
        raise ValueError(f"unknown kernels {sorted(unknown)}")
    types = [irdl_attr_definition(type(f"{prefix.title()}{base.__name__}Type", (base,), {
        "name": f"{prefix}.{suffix}", "__doc__": base.__doc__, "__module__": __name__}))
        for base, suffix in ((PackedConv, "packed_conv"), (PackedLinear, "packed_linear"))]
    ops = [irdl_op_definition(type(f"{prefix.title()}{''.join(p.title() for p in name.split('_'))}Op", (kind,), {
        "name": f"{prefix}.{name}", "__doc__": doc, "__module__": __name__}))
        for name, (kind, doc) in KERNELS.items() if name not in exclude]
    return Dialect(prefix, ops, types)
