"""Named functions the rules of quantized-kernel backends call (`x86.rules`, `qnnpack.rules`)."""

from __future__ import annotations

from xdsl.dialects.builtin import FloatAttr, IntegerAttr, TensorType
from xdsl.ir import SSAValue

from qir.dialects import ref


def spatial_rank(value: SSAValue) -> int:
    """Spatial dimensions of the conv defining `value` (2 for a conv2d)."""
    return value.owner.spatial_rank


def is_transposed(value: SSAValue) -> bool:
    return isinstance(value.owner, ref.ConvOp) and value.owner.is_transposed


def conv_engine(value: SSAValue) -> str:
    """The engine to pack the conv defining `value` for: torch's `x86` engine, but oneDNN for a
    grouped conv. The x86 engine gives depthwise convs of more than 100 channels (and every
    grouped conv on a CPU without VNNI) to fbgemm, whose kernels add pairs of taps in int16 with
    saturation even on VNNI CPUs (a 128-channel depthwise conv: 19 dB from its reference);
    oneDNN's grouped and depthwise int8 convs are exact."""
    return "onednn" if value.owner.groups.value.data > 1 else "x86"


def post_min(value: SSAValue) -> float:
    """The lower bound of the hardtanh fused into the op defining `value`."""
    return float(value.owner.post_args.get_values()[0])


def post_max(value: SSAValue) -> float:
    return float(value.owner.post_args.get_values()[1])


def fn_arg(value: SSAValue, index: int | IntegerAttr, default: float | FloatAttr) -> float:
    """Scalar argument `index` of the function of the `ref.lookup` defining `value`, or `default`."""
    index = index.value.data if isinstance(index, IntegerAttr) else index
    default = default.value.data if isinstance(default, FloatAttr) else default
    args = value.owner.fn_args
    if args is None or index >= len(args.data):
        return float(default)
    return float(args.data[index].value.data)


def float_type(value: SSAValue) -> TensorType:
    """The float tensor type a quantized tensor value stands for (its expressed type)."""
    return TensorType(ref.quantized(value).expressed_type, value.type.get_shape())


FUNCTIONS = {f.__name__: f for f in (spatial_rank, is_transposed, conv_engine, post_min, post_max, fn_arg,
                                     float_type)}
