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


FUNCTIONS = {f.__name__: f for f in (spatial_rank, is_transposed, post_min, post_max, fn_arg, float_type)}
