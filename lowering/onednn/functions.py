"""Named functions the onednn rules call (see `onednn.rules`): facts about the matched ops that
the rule language does not compute itself."""

from __future__ import annotations

from xdsl.dialects.builtin import ArrayAttr, Float32Type, FloatAttr, IntegerAttr, NoneAttr, StringAttr
from xdsl.ir import Attribute, SSAValue

from qir.dialects import ref
from qir.lowering.onednn.dialect import CONV_POSTS, LINEAR_POSTS
from qir.lowering.onednn.storage_ops import STORAGES, storage_name


def spatial_rank(value: SSAValue) -> int:
    """Spatial dimensions of the conv defining `value` (2 for a conv2d)."""
    return value.owner.spatial_rank


def is_transposed(value: SSAValue) -> bool:
    return isinstance(value.owner, ref.ConvOp) and value.owner.is_transposed


def static_shape(value: SSAValue) -> list[int] | None:
    """The shape of `value` when every dimension is static (what oneDNN packs a weight for),
    else None (the entry is left out: a weight packed for any shape)."""
    shape = list(value.type.get_shape())
    return shape if all(d >= 0 for d in shape) else None


def is_f32(value: SSAValue) -> bool:
    """Whether `value` is a float32 tensor (the float type the kernels read and write)."""
    return isinstance(ref.element(value), Float32Type)


def is_activation(value: SSAValue) -> bool:
    """Whether `value` is per-tensor quantized with u8 or i8 storage: a plain uint8 / int8 tensor
    the kernels and the storage ops take."""
    return storage_name(value) in STORAGES and ref.per_tensor(value) is not None


def is_kernel_output(value: SSAValue) -> bool:
    """Whether a oneDNN kernel can write `value` (u8 / i8 per tensor, or f32)."""
    return is_activation(value) or is_f32(value)


def sum_accumulator(accum: SSAValue, result: SSAValue) -> bool:
    """Whether oneDNN can sum into `accum` to give `result`: both per-tensor, one storage, one shape."""
    return (is_activation(accum) and is_activation(result) and storage_name(accum) == storage_name(result)
            and accum.type.get_shape() == result.type.get_shape())


def _post_bounds(value: SSAValue) -> tuple[int, int]:
    """The storage bounds of the relu or hardtanh fused into the ref op defining `value`
    (`qir.dialects.ref`'s definition: `[zy, qmax]`, `[zy + round(lo / sy), zy + round(hi / sy)]`)."""
    op = value.owner
    return _storage_bounds(op.post.data, op.post_args.get_values() if op.post_args is not None else (),
                           ref.per_tensor(value))


def _storage_bounds(post: str, args, qout) -> tuple[int, int]:
    lo, hi = qout.storage_min, qout.storage_max
    zy, sy = qout.zero_point, qout.scale
    if post == "relu":
        bounds = (zy, hi)
    else:
        bounds = (zy + round(args[0] / sy), zy + round(args[1] / sy))
    return min(max(bounds[0], lo), hi), min(max(bounds[1], lo), hi)


def post_lo(value: SSAValue) -> int:
    return _post_bounds(value)[0]


def post_hi(value: SSAValue) -> int:
    return _post_bounds(value)[1]


def kernel_fuses_post(value: SSAValue) -> bool:
    """Whether the oneDNN conv for the `ref.conv` defining `value` runs its post op fused."""
    op = value.owner
    post = op.post.data if op.post is not None else None
    return post is None or post in CONV_POSTS[op.spatial_rank]


# -- Lookups as post ops --------------------------------------------------------------------

# ATen function of a `ref.lookup` → oneDNN post op, with how its fn_args become post_args.
_LOOKUP_POSTS = {
    "relu.default": ("relu", ()),
    "hardtanh.default": ("hardtanh", (-1.0, 1.0)),
    "hardswish.default": ("hardswish", ()),
    "silu.default": ("swish", ()),
    "tanh.default": ("tanh", ()),
    "gelu.default": ("gelu", ()),
    "leaky_relu.default": ("leaky_relu", (0.01,)),
}


def _fn_args(op) -> list[Attribute]:
    return list(op.fn_args.data) if op.fn_args is not None else []


def _lookup_post(value: SSAValue) -> tuple[str, list[float], str | None] | None:
    """(post op, post_args, algorithm) for the `ref.lookup` defining `value`, if oneDNN has its
    function as a post op."""
    op = value.owner
    entry = _LOOKUP_POSTS.get(op.fn.data)
    if entry is None:
        return None
    post, defaults = entry
    given = _fn_args(op)
    if post == "gelu":
        approximate = given[0] if given else StringAttr("none")
        if not isinstance(approximate, StringAttr) or approximate.data not in ("none", "tanh") or len(given) > 1:
            return None
        return post, [], approximate.data
    if len(given) > len(defaults):
        return None
    args = []
    for i, default in enumerate(defaults):
        attr = given[i] if i < len(given) else None
        if attr is None or isinstance(attr, NoneAttr):
            args.append(default)
        elif isinstance(attr, IntegerAttr | FloatAttr):
            args.append(float(attr.value.data))
        else:
            return None
    return post, args, None


def fuses_lookup(value: SSAValue, producer: SSAValue) -> bool:
    """Whether the `ref.lookup` defining `value` can be the post op of the kernel that will
    compute `producer` (a `ref.linear` or `ref.conv` result): its function is one of that
    kernel's post ops."""
    found = _lookup_post(value)
    if found is None:
        return False
    owner = producer.owner
    allowed = LINEAR_POSTS if isinstance(owner, ref.LinearOp) else CONV_POSTS[owner.spatial_rank]
    return found[0] in allowed


def lookup_post(value: SSAValue) -> str:
    return _lookup_post(value)[0]


def lookup_post_args(value: SSAValue) -> list[float] | None:
    return _lookup_post(value)[1] or None


def lookup_algorithm(value: SSAValue) -> str | None:
    return _lookup_post(value)[2]


def is_clamp(value: SSAValue) -> bool:
    """Whether the `ref.lookup` defining `value` is a relu or hardtanh with its input's parameters:
    then it is a clamp of the storage, exactly."""
    op = value.owner
    found = _lookup_post(value)
    return found is not None and found[0] in ("relu", "hardtanh") and op.input.type == op.output.type


def clamp_lo(value: SSAValue) -> int:
    post, args, _ = _lookup_post(value)
    return _storage_bounds(post, args, ref.per_tensor(value))[0]


def clamp_hi(value: SSAValue) -> int:
    post, args, _ = _lookup_post(value)
    return _storage_bounds(post, args, ref.per_tensor(value))[1]


# -- ATen max-pool arguments ----------------------------------------------------------------


def _int_list(attr: Attribute | None, n: int) -> list[int] | None:
    """An `int[n]` argument as n ints (torch expands one value), or None when not constant."""
    if isinstance(attr, IntegerAttr) and not _is_bool(attr):
        return [attr.value.data] * n
    if isinstance(attr, ArrayAttr):
        values = [a.value.data for a in attr.data if isinstance(a, IntegerAttr) and not _is_bool(a)]
        if len(values) != len(attr.data):
            return None
        if len(values) == n:
            return values
        if len(values) == 1:
            return values * n
    return None


def _is_bool(attr: IntegerAttr) -> bool:
    return attr.type.width.data == 1


def pool_args_constant(kernel, stride, padding, dilation, ceil_mode) -> bool:
    """Whether a max-pool's arguments are constants (symbolic sizes stay an ATen call)."""
    n = len(kernel.data) if isinstance(kernel, ArrayAttr) else 0
    empty_stride = isinstance(stride, ArrayAttr) and not stride.data
    return (n in (2, 3) and _int_list(kernel, n) is not None
            and (empty_stride or _int_list(stride, n) is not None)
            and _int_list(padding, n) is not None and _int_list(dilation, n) is not None
            and isinstance(ceil_mode, IntegerAttr))


def pool_ints(attr, kernel) -> list[int]:
    """An `int[n]` argument of a pool (padding, dilation), `n` the kernel's rank."""
    return _int_list(attr, len(kernel.data))


def pool_stride(stride, kernel) -> list[int]:
    """The stride of a pool: `[]` (the default) is the kernel size."""
    n = len(kernel.data)
    if isinstance(stride, ArrayAttr) and not stride.data:
        return _int_list(kernel, n)
    return _int_list(stride, n)


def flag(attr: IntegerAttr) -> bool:
    return bool(attr.value.data)


FUNCTIONS = {f.__name__: f for f in (
    spatial_rank, is_transposed, static_shape, is_f32, is_activation, is_kernel_output, sum_accumulator, post_lo,
    post_hi, kernel_fuses_post, fuses_lookup, lookup_post, lookup_post_args, lookup_algorithm, is_clamp, clamp_lo,
    clamp_hi, pool_args_constant, pool_ints, pool_stride, flag)}
