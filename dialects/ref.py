"""The `ref` dialect: quantized ops whose numerics are defined exactly in integers.

`reference-rewrite` turns the Q/DQ patterns of the quantized stage (dequantize,
float op, quantize) into these ops; every backend lowers from them, and the
`reference` backend runs them as integer ATen arithmetic, the bit-exact
emulation a backend is checked against.

Values. An operand or result of type `tensor<...x!quant.uniform<...>>` is its
integer storage `q`; it stands for the real value `s * (q - z)`. A result of
a float type (`tensor<...xf32>`) is a plain float tensor: conv, linear and
matmul may leave the integer domain directly (a last layer read in float).

The arithmetic, for every op below (`round` is round half to even, as
`torch.round` and the kernels' `nearbyint`; every product and quotient is a
float64 operation, evaluated in the order written):

* accumulate: `acc = sum((x - zx) * (w - zw))`, exact (int8 x int8 products
  summed in int32, or in float64, which holds every such sum exactly);
* bias: an integer bias is added to `acc` as is (its scale is `sx * sw[c]`);
  a float bias `b` is first quantized to `round(b / (sx * sw[c]))`;
* requantize: `y = clamp(post(round(acc * ((sx * sw[c]) / sy)) + zy), qmin, qmax)`;
  to a float result: `y = float32(acc * (sx * sw[c]))`, no post op;
* post op: `relu` is `max(y, zy)`; `hardtanh` with `post_args = [lo, hi]` is
  `clamp(y, zy + round(lo / sy), zy + round(hi / sy))`. Both equal the float
  op followed by quantization, exactly (rounding is monotone). The storage
  clamp comes last, so the result is always a storage value.

`sw[c]` is the weight scale of output channel `c`: the one scale of a
per-tensor weight, or its per-channel scales (see `channel_scales` for the
grouped transposed case, whose scales repeat per group). A mean (the pools)
is `sum / count`: the exact integer sum, divided once.

Saturating accumulation. A conv, conv_add or linear may carry `saturate = "fbgemm"` or
`"onednn"`: it then computes what that kernel family computes on an x86 CPU without AVX-512
VNNI, where the storage products `x * w` (zero point not subtracted) are added in PAIRS in
int16 with saturation before the int32 sum: `acc` gains, for every pair the family forms
(`qir.accumulation.Reduction.pair_indices`), `clamp(p, -32768, 32767) - p` where `p` is the
pair's sum of raw products (a padded position holds the zero point for fbgemm, 0 for oneDNN).
`emulate-target` puts it where a target's kernels could saturate; it is never lowered.

Each op's docstring states the rest. The text form is the kernel form shared
with backend ops (`qir.dialects.kernel`):

    %y = ref.linear(%x, %w, %b) {post = "relu"} : (tensor<2x8x!quant.uniform<u8:f32, 0.02:128>>,
           tensor<4x8x!quant.uniform<i8:f32:0, {...}>>, tensor<4xf32>) -> tensor<2x4x!quant.uniform<u8:f32, 0.01>>

Dynamic quantization. `ref.dynamic_linear` reads an input whose parameters were chosen at run
time (`quant.choose_qparams`, `quant.dynamic_qcast`): its storage (`!quant.any`) and its scale
and zero point as operands, one pair per tensor or one per row. The accumulation is exact as
above and the result float: `y = float32(acc * (s * sw[c]) + b)`, the row's `s`.

Shape and data-movement ops (view, permute, max-pool, getitem of a split...)
need no `ref` op: they are `aten.op`s applied to quantized values directly,
exact on the storage because input and output share their parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    ArrayAttr,
    BoolAttr,
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    NoneAttr,
    NoneType,
    StringAttr,
    TensorType,
    f64,
    i64,
)
from xdsl.ir import Attribute, Dialect, SSAValue
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    var_operand_def,
)
from xdsl.utils.exceptions import VerifyException

from qir.dialects.kernel import KernelOp
from qir.dialects.quant import QuantizedType, UniformQuantizedPerAxisType, UniformQuantizedType

POST_OPS = ("relu", "hardtanh")
"""The activations a conv, linear, add or mul may be fused with."""

LOOKUP_MAX_BITS = 16
"""The widest storage a `ref.lookup` table covers (65536 entries)."""


# --------------------------------------------------------------------------
# Type helpers, shared by the verifiers and by passes.
# --------------------------------------------------------------------------


def element(value: SSAValue | Attribute) -> Attribute | None:
    """The element type of a tensor value or type (None for non-tensors)."""
    type_ = value.type if isinstance(value, SSAValue) else value
    return type_.element_type if isinstance(type_, TensorType) else None


def quantized(value: SSAValue | Attribute) -> QuantizedType | None:
    """The quantized element type of a tensor, or None if it is not quantized."""
    elem = element(value)
    return elem if isinstance(elem, QuantizedType) else None


def per_tensor(value: SSAValue | Attribute) -> UniformQuantizedType | None:
    elem = element(value)
    return elem if isinstance(elem, UniformQuantizedType) else None


def _require_per_tensor(op: KernelOp, what: str, value: SSAValue) -> None:
    if per_tensor(value) is None:
        raise VerifyException(f"{op.name}: {what} must be a per-tensor quantized tensor, got {value.type}")


def _require_quantized_or_float(op: KernelOp, value: SSAValue) -> None:
    elem = element(value)
    if not isinstance(elem, UniformQuantizedType) and not _is_float(elem):
        raise VerifyException(f"{op.name}: the result must be per-tensor quantized or float, got {value.type}")


def _is_float(elem: Attribute | None) -> bool:
    from xdsl.dialects.builtin import AnyFloat

    return isinstance(elem, AnyFloat)


def _verify_weight(op: KernelOp, weight: SSAValue, out_channels_axis: int, out_channels: int | None) -> None:
    qtype = quantized(weight)
    if qtype is None:
        raise VerifyException(f"{op.name}: the weight must be quantized, got {weight.type}")
    if isinstance(qtype, UniformQuantizedPerAxisType):
        if qtype.axis != out_channels_axis:
            raise VerifyException(
                f"{op.name}: a per-channel weight must be quantized along axis {out_channels_axis} "
                f"(its output channels), not {qtype.axis}")
        if out_channels is not None and len(qtype.scales) != out_channels:
            raise VerifyException(f"{op.name}: {len(qtype.scales)} weight scales for {out_channels} output channels")


def _verify_bias(op: KernelOp, bias: SSAValue, channels: int | None) -> None:
    type_ = bias.type
    if not isinstance(type_, TensorType) or len(type_.get_shape()) != 1:
        raise VerifyException(f"{op.name}: the bias must be a 1-D tensor, got {type_}")
    elem = type_.element_type
    if not (_is_float(elem) or (isinstance(elem, IntegerType) and elem.width.data == 32)):
        raise VerifyException(f"{op.name}: the bias must be f32 or i32, got {type_}")
    size = type_.get_shape()[0]
    if channels is not None and size >= 0 and channels >= 0 and size != channels:
        raise VerifyException(f"{op.name}: a bias of {size} for {channels} output channels")


class _PostOpMixin:
    """`post` and `post_args` properties: the fused activation (see the module docstring)."""

    def verify_post(self) -> None:
        post = self.post.data if self.post is not None else None
        args = self.post_args.get_values() if self.post_args is not None else ()
        if post is None:
            if args:
                raise VerifyException(f"{self.name}: post_args without a post op")
            return
        if post not in POST_OPS:
            raise VerifyException(f"{self.name}: unknown post op {post!r} (post ops: {', '.join(POST_OPS)})")
        if post == "hardtanh" and (len(args) != 2 or not args[0] <= args[1]):
            raise VerifyException(f"{self.name}: hardtanh needs post_args = [lo, hi] with lo <= hi")
        if post == "relu" and args:
            raise VerifyException(f"{self.name}: relu takes no post_args")
        if per_tensor(self.results[0]) is None:
            raise VerifyException(f"{self.name}: a post op needs a quantized result")


def post_properties(post: str | None, post_args: Sequence[float] = ()) -> dict[str, Attribute]:
    """The `post`/`post_args` properties for a fused activation (none when `post` is None)."""
    if post is None:
        return {}
    props: dict[str, Attribute] = {"post": StringAttr(post)}
    if post_args:
        props["post_args"] = DenseArrayBase.from_list(f64, [float(a) for a in post_args])
    return props


def int_array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


def channel_scales(weight: SSAValue | Attribute, out_channels: int) -> list[float]:
    """`sw[c]` for each of `out_channels` output channels of a quantized weight.

    Per tensor, the one scale for every channel; per channel, its scales, repeated once per
    group when there are fewer than channels: a grouped transposed convolution's weight is
    `[in, out / groups, k...]`, quantized along axis 1, so output channel `g * (out / groups) + j`
    has scale `j`."""
    qtype = quantized(weight)
    if isinstance(qtype, UniformQuantizedType):
        return [qtype.scale] * out_channels
    if not isinstance(qtype, UniformQuantizedPerAxisType):
        raise ValueError(f"not a quantized weight: {weight}")
    scales = list(qtype.scales)
    if out_channels % len(scales):
        raise ValueError(f"{len(scales)} weight scales do not divide {out_channels} output channels")
    return scales * (out_channels // len(scales))


# --------------------------------------------------------------------------
# Operations.
# --------------------------------------------------------------------------


@irdl_op_definition
class ConvOp(_PostOpMixin, KernelOp):
    """Quantized convolution, 1-D to 3-D, grouped, depthwise or transposed.

    `acc[n, c, ...] = sum over the window and the group's input channels of
    (x - zx) * (w[c] - zw[c])`, then bias, requantization and post op as in the
    module docstring. Weight layout is torch's: `[out, in / groups, k...]`, or
    `[in, out / groups, k...]` when `transposed`; a per-channel weight is
    quantized along its output-channel axis (0, or 1 when transposed).
    Attributes are `aten.convolution`'s."""

    name = "ref.conv"

    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(TensorType)

    stride = prop_def(DenseArrayBase)
    padding = prop_def(DenseArrayBase)
    dilation = prop_def(DenseArrayBase)
    groups = prop_def(IntegerAttr)
    transposed = opt_prop_def(BoolAttr)
    output_padding = opt_prop_def(DenseArrayBase)
    post = opt_prop_def(StringAttr)
    post_args = opt_prop_def(DenseArrayBase)
    saturate = opt_prop_def(StringAttr)

    @property
    def is_transposed(self) -> bool:
        return self.transposed is not None and bool(self.transposed.value.data)

    @property
    def spatial_rank(self) -> int:
        return len(self.weight.type.get_shape()) - 2

    def verify_(self) -> None:
        _require_per_tensor(self, "the input", self.input)
        _require_quantized_or_float(self, self.output)
        rank = len(self.weight.type.get_shape())
        if rank < 3 or rank > 5:
            raise VerifyException(f"{self.name}: the weight must have 3 to 5 dimensions, got {self.weight.type}")
        spatial = rank - 2
        _require_batched(self, rank)
        for key in ("stride", "padding", "dilation") + (("output_padding",) if self.output_padding else ()):
            values = getattr(self, key).get_values()
            if len(values) != spatial:
                raise VerifyException(f"{self.name}: {key} has {len(values)} entries for {spatial} spatial dims")
        groups = self.groups.value.data
        if groups < 1:
            raise VerifyException(f"{self.name}: groups must be positive, got {groups}")
        shape = self.weight.type.get_shape()
        axis = 1 if self.is_transposed else 0
        out_channels = shape[axis] * groups if self.is_transposed else shape[0]
        _verify_weight(self, self.weight, axis, shape[axis])
        _verify_bias(self, self.bias, out_channels)
        self.verify_post()
        _verify_saturate(self)


SATURATING_KERNELS = ("fbgemm", "onednn")
"""The kernel families whose int16 pair accumulation `saturate` emulates (`qir.accumulation`)."""


def _verify_saturate(op) -> None:
    if op.saturate is None:
        return
    if op.saturate.data not in SATURATING_KERNELS:
        raise VerifyException(f"{op.name}: saturate must be one of {', '.join(SATURATING_KERNELS)}, "
                              f"got {op.saturate.data!r}")
    qin, qweight = per_tensor(op.input), quantized(op.weight)
    if qin is None or qin.is_signed or qin.storage_width != 8 or qweight is None or qweight.storage_width != 8:
        raise VerifyException(f"{op.name}: saturate emulates uint8 x int8 kernels, got {op.input.type} x "
                              f"{op.weight.type}")


def _require_batched(op, rank: int) -> None:
    """A convolution's input and result are batched: `[N, C, spatial...]`, the weight's rank."""
    for what, value in (("input", op.input), ("result", op.output)):
        if len(value.type.get_shape()) != rank:
            raise VerifyException(f"{op.name}: the {what} {value.type} must be batched, with the weight's rank "
                                  f"({rank}: N, C and {rank - 2} spatial dims)")


@irdl_op_definition
class ConvAddOp(_PostOpMixin, KernelOp):
    """A quantized convolution whose result is added to another quantized tensor
    before requantization (a residual connection), then the post op:
    `y = clamp(round(acc * (sx * sw[c] / sy) + (a - za) * (sa / sy)) + zy)`.
    The attributes are those of `ref.conv`; `addend` has the result's shape."""

    name = "ref.conv_add"

    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    addend = operand_def(TensorType)
    output = result_def(TensorType)

    stride = prop_def(DenseArrayBase)
    padding = prop_def(DenseArrayBase)
    dilation = prop_def(DenseArrayBase)
    groups = prop_def(IntegerAttr)
    post = opt_prop_def(StringAttr)
    post_args = opt_prop_def(DenseArrayBase)
    saturate = opt_prop_def(StringAttr)

    @property
    def spatial_rank(self) -> int:
        return len(self.weight.type.get_shape()) - 2

    def verify_(self) -> None:
        _require_per_tensor(self, "the input", self.input)
        _require_per_tensor(self, "the addend", self.addend)
        _require_per_tensor(self, "the result", self.output)
        if self.addend.type.get_shape() != self.output.type.get_shape():
            raise VerifyException(f"{self.name}: the addend {self.addend.type} and the result "
                                  f"{self.output.type} differ in shape")
        shape = self.weight.type.get_shape()
        spatial = len(shape) - 2
        _require_batched(self, len(shape))
        for key in ("stride", "padding", "dilation"):
            if len(getattr(self, key).get_values()) != spatial:
                raise VerifyException(f"{self.name}: {key} must have {spatial} entries")
        _verify_weight(self, self.weight, 0, shape[0])
        _verify_bias(self, self.bias, shape[0])
        self.verify_post()
        _verify_saturate(self)


@irdl_op_definition
class LinearOp(_PostOpMixin, KernelOp):
    """Quantized `linear`: `acc[..., c] = sum_k (x[..., k] - zx) * (w[c, k] - zw[c])`,
    for an input of any rank; weight `[out, in]`, per channel along axis 0."""

    name = "ref.linear"

    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(TensorType)

    post = opt_prop_def(StringAttr)
    post_args = opt_prop_def(DenseArrayBase)
    saturate = opt_prop_def(StringAttr)

    def verify_(self) -> None:
        _require_per_tensor(self, "the input", self.input)
        _require_quantized_or_float(self, self.output)
        shape = self.weight.type.get_shape()
        if len(shape) != 2:
            raise VerifyException(f"{self.name}: the weight must be 2-D, got {self.weight.type}")
        _verify_weight(self, self.weight, 0, shape[0])
        _verify_bias(self, self.bias, shape[0])
        self.verify_post()
        _verify_saturate(self)


@irdl_op_definition
class DynamicLinearOp(KernelOp):
    """`linear` of an input quantized at run time (dynamic quantization), to a float result:

        %y = ref.dynamic_linear(%x_q, %s, %z, %w, %b) : (tensor<16x384x!quant.any<u8:f32>>, tensor<f32>,
               tensor<i64>, tensor<1536x384x!quant.uniform<i8:f32:0, {...}>>, tensor<1536xf32>) -> tensor<16x1536xf32>

    `acc[..., c] = sum_k (x[..., k] - z) * (w[c, k] - zw[c])`, exact, with `s` and `z` the
    input's run-time scale and zero point (`tensor<f32>`/`tensor<i64>` for the tensor, or one
    per row: the input's shape with a last dimension of 1); then, in float64 arithmetic in the
    order written, `y = float32(acc * (s * sw[c]) + b[c])`. The bias is float (it has no
    integer form: the input's scale is known only at run time). Weight `[out, in]`, per channel
    along axis 0 or per tensor."""

    name = "ref.dynamic_linear"

    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    zero_point = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(TensorType)

    @property
    def per_token(self) -> bool:
        from qir.dialects.quant import is_per_token

        return is_per_token(self.scale.type)

    def verify_(self) -> None:
        verify_dynamic_linear(self)


def verify_dynamic_linear(op) -> None:
    """The checks of `ref.dynamic_linear`, for any op with its fields (a backend's kernel op)."""
    from qir.dialects.quant import AnyQuantizedType, _verify_run_time_parameters

    if not isinstance(element(op.input), AnyQuantizedType):
        raise VerifyException(f"{op.name}: the input must be a tensor of !quant.any (run-time "
                              f"parameters), got {op.input.type}")
    _verify_run_time_parameters(op, op.input.type, op.scale.type, op.zero_point.type)
    shape = op.weight.type.get_shape()
    if len(shape) != 2:
        raise VerifyException(f"{op.name}: the weight must be 2-D, got {op.weight.type}")
    _verify_weight(op, op.weight, 0, shape[0])
    if isinstance(quantized(op.weight), AnyQuantizedType):
        raise VerifyException(f"{op.name}: the weight needs its parameters, got {op.weight.type}")
    _verify_bias(op, op.bias, shape[0])
    if not _is_float(element(op.bias)):
        raise VerifyException(f"{op.name}: the bias must be float, got {op.bias.type}")
    if not _is_float(element(op.output)):
        raise VerifyException(f"{op.name}: the result must be float, got {op.output.type}")
    in_shape, out_shape = op.input.type.get_shape(), op.output.type.get_shape()
    if not in_shape or out_shape[:-1] != in_shape[:-1] or in_shape[-1] not in (shape[1], -1) \
            or out_shape[-1] not in (shape[0], -1):
        raise VerifyException(f"{op.name}: a {op.input.type} by a {op.weight.type} weight does not "
                              f"give {op.output.type}")


@irdl_op_definition
class MatmulOp(KernelOp):
    """Quantized `matmul`/`bmm` of two per-tensor quantized tensors, torch's broadcasting:
    `acc = (a - za) @ (b - zb)`, requantized with `sa * sb / sy` (or to float)."""

    name = "ref.matmul"

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        _require_per_tensor(self, "the left operand", self.lhs)
        _require_per_tensor(self, "the right operand", self.rhs)
        _require_quantized_or_float(self, self.output)


class _BinaryOp(_PostOpMixin, KernelOp):
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)

    post = opt_prop_def(StringAttr)
    post_args = opt_prop_def(DenseArrayBase)

    def verify_(self) -> None:
        _require_per_tensor(self, "the left operand", self.lhs)
        _require_per_tensor(self, "the right operand", self.rhs)
        _require_per_tensor(self, "the result", self.output)
        self.verify_post()


@irdl_op_definition
class AddOp(_BinaryOp):
    """Quantized elementwise add, broadcasting:
    `y = clamp(round((a - za) * (sa / sy) + (b - zb) * (sb / sy)) + zy)`, then the post op."""

    name = "ref.add"


@irdl_op_definition
class MulOp(_BinaryOp):
    """Quantized elementwise multiply, broadcasting:
    `y = clamp(round((a - za) * (b - zb) * (sa * sb / sy)) + zy)`, then the post op."""

    name = "ref.mul"


@irdl_op_definition
class CatOp(KernelOp):
    """Concatenation along `dim`, each input requantized to the result's parameters:
    `clamp(round((x - zx) * (sx / sy)) + zy)` (a plain copy when they are the same)."""

    name = "ref.cat"

    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)

    dim = prop_def(IntegerAttr)

    def verify_(self) -> None:
        if not self.inputs:
            raise VerifyException(f"{self.name}: needs at least one input")
        for value in self.inputs:
            _require_per_tensor(self, "every input", value)
        _require_per_tensor(self, "the result", self.output)


@irdl_op_definition
class RequantizeOp(KernelOp):
    """New parameters for a quantized tensor: `y = clamp(round((x - zx) * (sx / sy)) + zy)`."""

    name = "ref.requantize"

    input = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        _require_per_tensor(self, "the input", self.input)
        _require_per_tensor(self, "the result", self.output)
        if self.input.type.get_shape() != self.output.type.get_shape():
            raise VerifyException(f"{self.name}: input and result differ in shape")


@irdl_op_definition
class AvgPoolOp(KernelOp):
    """Average pooling, 1-D to 3-D (`aten.avg_pool*d`'s attributes and defaults: an absent
    `ceil_mode` is false, an absent `count_include_pad` true):
    `y = clamp(round(mean_window(x - zx) * (sx / sy)) + zy)`, the window mean the exact sum
    divided once by torch's divisor (`count_include_pad`, `divisor_override`)."""

    name = "ref.avg_pool"

    input = operand_def(TensorType)
    output = result_def(TensorType)

    kernel_size = prop_def(DenseArrayBase)
    stride = prop_def(DenseArrayBase)
    padding = prop_def(DenseArrayBase)
    ceil_mode = opt_prop_def(BoolAttr)
    count_include_pad = opt_prop_def(BoolAttr)
    divisor_override = opt_prop_def(IntegerAttr)

    def verify_(self) -> None:
        _require_per_tensor(self, "the input", self.input)
        _require_per_tensor(self, "the result", self.output)
        sizes = {len(getattr(self, k).get_values()) for k in ("kernel_size", "stride", "padding")}
        if len(sizes) != 1 or not 1 <= sizes.pop() <= 3:
            raise VerifyException(f"{self.name}: kernel_size, stride and padding must have 1 to 3 equal entries")


@irdl_op_definition
class AdaptiveAvgPoolOp(KernelOp):
    """Adaptive average pooling to `output_size` (torch's bins: `[floor(i * n / o), ceil((i + 1) * n / o))`):
    `y = clamp(round(mean_bin(x - zx) * (sx / sy)) + zy)`, the mean the exact sum divided once
    by the bin's size. (torch's own float64 kernel divides twice, `sum / kh / kw`, so it is
    not this definition: the sizes of the pooled dimensions must be static.)"""

    name = "ref.adaptive_avg_pool"

    input = operand_def(TensorType)
    output = result_def(TensorType)

    output_size = prop_def(DenseArrayBase)

    def verify_(self) -> None:
        _require_per_tensor(self, "the input", self.input)
        _require_per_tensor(self, "the result", self.output)
        if not 1 <= len(self.output_size.get_values()) <= 3:
            raise VerifyException(f"{self.name}: output_size must have 1 to 3 entries")


@irdl_op_definition
class LookupOp(KernelOp):
    """An elementwise function of one quantized tensor, as a table over the storage:
    `y = clamp(round(f(sx * (x - zx)) / sy) + zy)` for each of the (at most 2^16)
    values `x` of the input's storage range, `f` the ATen operator `fn` (`"hardswish.default"`,
    `"sigmoid.default"`, ...) evaluated in float64. A NaN of `f` maps to `zy` (real zero),
    infinities to the ends of the storage range. Exact by construction: the table is
    the definition.

    `fn_args` are `fn`'s arguments after the input, in its schema's order (keyword-only
    ones included, the schema's defaults filling any gap), each a scalar or `none`:
    `gelu.default` with `fn_args = ["tanh"]` is `gelu(x, approximate="tanh")`."""

    name = "ref.lookup"

    input = operand_def(TensorType)
    output = result_def(TensorType)

    fn = prop_def(StringAttr)
    fn_args = opt_prop_def(ArrayAttr)

    def verify_(self) -> None:
        _require_per_tensor(self, "the input", self.input)
        _require_per_tensor(self, "the result", self.output)
        if quantized(self.input).storage_width > LOOKUP_MAX_BITS:
            raise VerifyException(f"{self.name}: a table over more than 16-bit storage is too large")
        if self.input.type.get_shape() != self.output.type.get_shape():
            raise VerifyException(f"{self.name}: input and result differ in shape")
        for arg in self.fn_args.data if self.fn_args is not None else ():
            # `none` prints as the attribute and parses back as the builtin none type: both mean None.
            if not isinstance(arg, IntegerAttr | FloatAttr | StringAttr | NoneAttr | NoneType):
                raise VerifyException(f"{self.name}: fn_args must be scalars or none, got {arg}")


def _verify_weight_only(op, weight: SSAValue, what: str) -> None:
    """A weight-only operand: a quantized tensor with its parameters (per tensor, per row, or
    sub-channel), or a float16 / bfloat16 one, whose conversion to float32 is exact."""
    from qir.dialects.quant import (
        UniformQuantizedPerAxisType,
        UniformQuantizedSubChannelType,
        UniformQuantizedType,
    )
    from xdsl.dialects.builtin import BFloat16Type, Float16Type

    elem = element(weight)
    shape = weight.type.get_shape() if isinstance(weight.type, TensorType) else ()
    if len(shape) != 2:
        raise VerifyException(f"{op.name}: the {what} must be 2-D, got {weight.type}")
    if isinstance(elem, Float16Type | BFloat16Type):
        return
    if isinstance(elem, UniformQuantizedPerAxisType):
        if elem.axis != 0:
            raise VerifyException(f"{op.name}: a per-axis {what} is quantized per row (axis 0), not along axis "
                                  f"{elem.axis}")
        return
    if not isinstance(elem, UniformQuantizedType | UniformQuantizedSubChannelType):
        raise VerifyException(f"{op.name}: the {what} must be quantized with its parameters, or float16 / "
                              f"bfloat16, got {weight.type}")


def _weight_only_element_check(op, value: SSAValue, what: str) -> None:
    from xdsl.dialects.builtin import Float32Type

    if not isinstance(element(value), Float32Type):
        raise VerifyException(f"{op.name}: the {what} must be float32, got {value.type}")


@irdl_op_definition
class WeightOnlyLinearOp(KernelOp):
    """A linear whose weight alone is quantized (weight-only): float activations in and out,

        y = x @ W.T + b,   W[n, k] = (float32(q[n, k]) - zp) * s

    with the scale and zero point (float32 scale, integer zero point, as the quant types define
    them) of `W[n, k]`'s tensor, row (per axis 0) or block (sub-channel: a group of a row), or
    `W = float32(w)` for a float16 / bfloat16 weight (exact). The weight is dequantized exactly;
    the products and sums are float32 operations in an order left to the kernel, as for any
    float matmul (kernels that factor the scale out of a row's or a group's sum, `s * sum(x * q)`,
    compute the same value up to that rounding). `x` is `[..., K]`, the weight `[N, K]`, the
    bias (optional) `[N]`, the result `[..., N]`; everything but the weight is float32.

        %y = ref.weight_only_linear(%x, %w) : (tensor<1x4096xf32>,
               tensor<4096x4096x!quant.uniform<u4:f32:{0:1, 1:32}, {...}>>) -> tensor<1x4096xf32>
    """

    name = "ref.weight_only_linear"

    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        _verify_weight_only(self, self.weight, "weight")
        _weight_only_element_check(self, self.input, "input")
        _weight_only_element_check(self, self.output, "result")
        out_features, in_features = self.weight.type.get_shape()
        if self.bias is not None:
            _weight_only_element_check(self, self.bias, "bias")
            _verify_bias(self, self.bias, out_features)
        in_shape, out_shape = self.input.type.get_shape(), self.output.type.get_shape()
        if not in_shape or out_shape[:-1] != in_shape[:-1] or in_shape[-1] not in (in_features, -1) \
                or out_shape[-1] not in (out_features, -1):
            raise VerifyException(f"{self.name}: a {self.input.type} by a {self.weight.type} weight does not "
                                  f"give {self.output.type}")


@irdl_op_definition
class WeightOnlyEmbeddingOp(KernelOp):
    """An embedding lookup in a table whose weights alone are quantized (per tensor or per row,
    axis 0), or stored in float16 / bfloat16: `y[..., :] = W[indices[...], :]` with
    `W[r, c] = (float32(q[r, c]) - zp) * s` (the row's or the tensor's parameters), exactly.
    `indices` is an integer tensor of any shape; the result is float32 `[*indices, D]`.

        %e = ref.weight_only_embedding(%w, %ids) : (tensor<32000x2048x!quant.uniform<u8:f32:0, {...}>>,
               tensor<1x1xi64>) -> tensor<1x1x2048xf32>
    """

    name = "ref.weight_only_embedding"

    weight = operand_def(TensorType)
    indices = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        from qir.dialects.quant import UniformQuantizedSubChannelType

        _verify_weight_only(self, self.weight, "table")
        if isinstance(element(self.weight), UniformQuantizedSubChannelType):
            raise VerifyException(f"{self.name}: a table is quantized per tensor or per row, not in blocks")
        if not isinstance(element(self.indices), IntegerType):
            raise VerifyException(f"{self.name}: the indices must be integers, got {self.indices.type}")
        _weight_only_element_check(self, self.output, "result")
        rows, width = self.weight.type.get_shape()
        expected = (*self.indices.type.get_shape(), width)
        if tuple(self.output.type.get_shape()) != expected:
            raise VerifyException(f"{self.name}: indices {self.indices.type} in a {self.weight.type} table give "
                                  f"shape {list(expected)}, not {self.output.type}")


EMBEDDING_BAG_MODES = ("sum", "mean", "max")
"""`ref.weight_only_embedding_bag`'s reductions, in the order of ATen's `mode` integer."""


def embedding_bag_args(op) -> tuple:
    """`aten.embedding_bag.padding_idx`'s arguments after the table, indices and offsets, from
    the properties of `op` (a `ref.weight_only_embedding_bag` or a backend's op copying them;
    `scale_grad_by_freq` and `sparse` change gradients only, so both are false)."""
    last = op.include_last_offset is not None and op.include_last_offset.value.data
    padding_idx = op.padding_idx.value.data if op.padding_idx is not None else None
    return False, EMBEDDING_BAG_MODES.index(op.mode.data), False, last, padding_idx


@irdl_op_definition
class WeightOnlyEmbeddingBagOp(KernelOp):
    """Bags of rows of a table whose weights alone are quantized (per tensor or per row), or
    stored in float16 / bfloat16: `torch.nn.functional.embedding_bag` of the dequantized table
    `W[r, c] = (float32(q[r, c]) - zp) * s` (the rows of a bag added, a mean divided by the bag's
    count, a maximum per column). The integers, scales and zero points are exact; the float32
    operations' rounding is left to the kernel, as for any float sum (a kernel may read a row as
    `q * s + (-zp * s)`); the reference backend computes ATen's bags of the dequantized table.

    `indices` and `offsets` are 1-D integer tensors (bag `b` holds `indices[offsets[b]:offsets[b+1]]`;
    with `include_last_offset` the last offset ends the last bag instead of starting one);
    `per_sample_weights` (`mode = "sum"` only) scales each looked-up row; an index equal to
    `padding_idx` adds nothing to its bag nor to its count. The result is float32 `[bags, D]`.

        %b = ref.weight_only_embedding_bag(%w, %ids, %offsets) {mode = "mean"}
               : (tensor<1000x64x!quant.uniform<u8:f32:0, {...}>>, tensor<40xi64>, tensor<8xi64>) -> tensor<8x64xf32>
    """

    name = "ref.weight_only_embedding_bag"

    weight = operand_def(TensorType)
    indices = operand_def(TensorType)
    offsets = operand_def(TensorType)
    per_sample_weights = opt_operand_def(TensorType)
    output = result_def(TensorType)

    mode = prop_def(StringAttr)
    include_last_offset = opt_prop_def(BoolAttr)
    padding_idx = opt_prop_def(IntegerAttr)

    def verify_(self) -> None:
        from qir.dialects.quant import UniformQuantizedSubChannelType

        _verify_weight_only(self, self.weight, "table")
        if isinstance(element(self.weight), UniformQuantizedSubChannelType):
            raise VerifyException(f"{self.name}: a table is quantized per tensor or per row, not in blocks")
        if self.mode.data not in EMBEDDING_BAG_MODES:
            raise VerifyException(f"{self.name}: mode is one of {', '.join(EMBEDDING_BAG_MODES)}, "
                                  f"not {self.mode.data!r}")
        for value, what in ((self.indices, "indices"), (self.offsets, "offsets")):
            if not isinstance(element(value), IntegerType) or value.type.get_num_dims() != 1:
                raise VerifyException(f"{self.name}: the {what} must be a 1-D integer tensor, got {value.type}")
        rows, width = self.weight.type.get_shape()
        if self.per_sample_weights is not None:
            if self.mode.data != "sum":
                raise VerifyException(f"{self.name}: per_sample_weights scale the rows of sums only, "
                                      f"not of a {self.mode.data}")
            _weight_only_element_check(self, self.per_sample_weights, "per_sample_weights")
            if self.per_sample_weights.type.get_shape() != self.indices.type.get_shape():
                raise VerifyException(f"{self.name}: one per-sample weight per index: "
                                      f"{self.per_sample_weights.type} for {self.indices.type}")
        if self.padding_idx is not None and not 0 <= self.padding_idx.value.data < rows:
            raise VerifyException(f"{self.name}: padding_idx {self.padding_idx.value.data} is not a row of "
                                  f"a {self.weight.type} table")
        _weight_only_element_check(self, self.output, "result")
        (offsets,) = self.offsets.type.get_shape()
        last = self.include_last_offset is not None and self.include_last_offset.value.data
        bags = offsets - 1 if last and offsets >= 0 else offsets
        shape = tuple(self.output.type.get_shape())
        if len(shape) != 2 or shape[1] != width or -1 not in (bags, shape[0]) and shape[0] != bags:
            raise VerifyException(f"{self.name}: {self.offsets.type} offsets in a {self.weight.type} table give "
                                  f"[{bags}, {width}] bags, not {self.output.type}")


Ref = Dialect(
    "ref",
    [ConvOp, ConvAddOp, LinearOp, DynamicLinearOp, MatmulOp, AddOp, MulOp, CatOp, RequantizeOp, AvgPoolOp,
     AdaptiveAvgPoolOp, LookupOp, WeightOnlyLinearOp, WeightOnlyEmbeddingOp,
     WeightOnlyEmbeddingBagOp],
    [],
)
