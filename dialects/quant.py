"""The `quant` dialect: MLIR's quantized types and casts, in xDSL.

Quantization parameters are part of the IR, not Python-side metadata: a tensor
quantized to int8 with scale 0.05 and zero point -3 has the type
`tensor<2x4x!quant.uniform<i8:f32, 5.000000e-02:-3>>`, so every stage after
`convert` can be printed, edited and parsed back without losing them. The text
is MLIR's own, so IR written here reads (and diffs) like `mlir-opt` output:

    !quant.uniform<i8:f32, 5.000000e-02:-3>                per tensor
    !quant.uniform<u8:f32, 2.352941e-02>                   zero point 0 omitted
    !quant.uniform<i8<-127:127>:f32, 1.000000e-01>         narrowed storage range
    !quant.uniform<i8:f32:0, {1.000000e-01,2.000000e-01:1}>  per axis (axis 0)
    !quant.uniform<u4:f32:{0:1, 1:32}, {{1.0e-02:8, 2.0e-02:7}, {...}}>  sub-channel: a scale and
                                                           zero point per block (groups of 32)

    %q = quant.qcast %x : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i8:f32, 0.05:-3>>
    %y = quant.dcast %q : tensor<2x4x!quant.uniform<i8:f32, 0.05:-3>> to tensor<2x4xf32>
    %i = quant.scast %q : tensor<2x4x!quant.uniform<i8:f32, 0.05:-3>> to tensor<2x4xi8>

One departure from MLIR, which prints scales with `%e` (seven significant
digits): a scale that does not survive that is printed with as many digits as
it needs to round-trip as a float64, so that printing never changes numerics.

Dynamic quantization: parameters chosen at run time
----------------------------------------------------

An activation quantized dynamically has no parameters to write into its type: they
are computed from the tensor each time the program runs. Its type is MLIR's
`!quant.any<storage:expressed>` (a quantized type whose parameters are not in the type;
storage range as for `!quant.uniform`), and the parameters travel as SSA values:

    %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<u8:f32>}
               : tensor<16x32x384xf32> -> (tensor<f32>, tensor<i64>)
    %q = quant.dynamic_qcast %x, %s, %z : (tensor<16x32x384xf32>, tensor<f32>, tensor<i64>)
               -> tensor<16x32x384x!quant.any<u8:f32>>
    %y = quant.dynamic_dcast %q, %s, %z : (tensor<16x32x384x!quant.any<u8:f32>>, tensor<f32>,
               tensor<i64>) -> tensor<16x32x384xf32>

The shapes of the parameters say the granularity: rank 0 for one scale per tensor,
the input's shape with the last dimension 1 for one per row of the last dimension
(per token: `tensor<16x32x1xf32>`). A scale is a float32 value, a zero point an
integer in the storage range. What each op computes is torch's `quantized_decomposed`
op of the same kind, spelled out in the op's docstring: every stage (the Q/DQ module,
the reference backend, a lowered kernel) computes exactly these integers.
"""

from __future__ import annotations

import array
import functools
import math
import re
import struct
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeVar, get_args

from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    BFloat16Type,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatData,
    IntAttr,
    IntegerType,
    Signedness,
    SignednessAttr,
    TensorType,
    UnitAttr,
    f32,
    f64,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    AttrConstraint,
    IntConstraint,
    IRDLOperation,
    ParsePropInAttrDict,
    VerificationContext,
    irdl_attr_definition,
    irdl_op_definition,
    irdl_to_attr_constraint,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.mlir_lexer import MLIRTokenKind

ExpressedType: TypeAlias = Float16Type | BFloat16Type | Float32Type | Float64Type
"""The float types a quantized type can stand for."""

MAX_STORAGE_BITS = 32
"""The widest storage type, as in MLIR."""

# Smallest (subnormal) and largest finite value of each expressed type: a scale
# outside this range cannot be represented in the type it scales.
_SCALE_RANGE: dict[type[Attribute], tuple[float, float]] = {
    Float16Type: (2.0**-24, 65504.0),
    BFloat16Type: (2.0**-133, 3.3895313892515355e38),
    Float32Type: (2.0**-149, 3.4028234663852886e38),
    Float64Type: (math.ulp(0.0), sys.float_info.max),
}

_EXPRESSED_DTYPE_NAME: dict[type[Attribute], str] = {
    Float16Type: "float16",
    BFloat16Type: "bfloat16",
    Float32Type: "float32",
    Float64Type: "float64",
}

# `i8` and `si8` are signed, `u8` and `ui8` unsigned, as MLIR's parser reads them.
_STORAGE_SPELLING = re.compile(r"(si|i|ui|u)([0-9]+)")


def integer_range(width: int, signed: bool) -> tuple[int, int]:
    """The full range `(min, max)` of a `width`-bit signed or unsigned integer."""
    if signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


def _verify_width(width: int) -> None:
    if not 1 <= width <= MAX_STORAGE_BITS:
        raise VerifyException(
            f"storage type width must be between 1 and {MAX_STORAGE_BITS}, got {width}"
        )


def _read_storage(spelling: str) -> tuple[int, bool]:
    """`(width, signed)` of a storage spelling such as `i8` or `u8`."""
    match = _STORAGE_SPELLING.fullmatch(spelling)
    if match is None:
        raise VerifyException(f"expected a storage type such as i8 or u8, got {spelling!r}")
    width = int(match.group(2))
    _verify_width(width)
    return width, match.group(1) in ("i", "si")


def format_scale(scale: float) -> str:
    """`scale` as MLIR prints a double (`%e`), with more digits only if needed to round-trip."""
    for digits in range(6, 16):
        text = f"{scale:.{digits}e}"
        if float(text) == scale:
            return text
    return f"{scale:.16e}"  # 17 significant digits always round-trip a float64


def _format_scale_zero(scale: float, zero_point: int) -> str:
    return format_scale(scale) if zero_point == 0 else f"{format_scale(scale)}:{zero_point}"


def _parse_scale(parser: AttrParser) -> float:
    """A scale: a decimal literal, or, as MLIR reads a double, a hexadecimal one holding the
    float64 bit pattern (`0x7FF8000000000000` is NaN, which the verifier then refuses; read
    as an integer it would be a huge finite scale)."""
    token = parser._current_token
    if token.kind == MLIRTokenKind.INTEGER_LIT and token.text[:2] in ("0x", "0X"):
        bits = int(token.text, 16)
        if bits >= 1 << 64:
            parser.raise_error("hexadecimal scale does not fit a float64 bit pattern", token.span)
        parser.parse_integer(allow_boolean=False)
        return struct.unpack("<d", bits.to_bytes(8, "little"))[0]
    return float(parser.parse_number(context_msg=" for the scale"))


def _table(element: Attribute, values: Sequence | bytes, typecode: str,
           shape: Sequence[int]) -> DenseIntOrFPElementsAttr:
    """A dense table of `shape` holding `values` (numbers, or their native bytes already):
    how per-axis and sub-channel types keep their scales (`f64`, typecode `d`) and zero
    points (`i64`, typecode `q`): bytes, not an attribute per entry."""
    data = values if isinstance(values, bytes) else array.array(typecode, values).tobytes()
    return DenseIntOrFPElementsAttr(_table_type(element, tuple(shape)), BytesAttr(data))


@functools.lru_cache(maxsize=256)
def _table_type(element: Attribute, shape: tuple[int, ...]) -> TensorType:
    """One TensorType per table shape (building one verifies it; 800 weights share a few)."""
    return TensorType(element, shape)


def _verify_scales(scales: array.array, expressed: Attribute) -> None:
    """Every scale positive, finite and within `expressed`'s range, checked with two
    comparisons per scale; the first bad one is reported as `_verify_scale` words it."""
    low, high = _SCALE_RANGE[type(expressed)]
    if not all(low <= s <= high for s in scales):  # NaN fails both comparisons
        _verify_scale(next(s for s in scales if not low <= s <= high), expressed)


def _verify_scale(scale: float, expressed: Attribute) -> None:
    if not (math.isfinite(scale) and scale > 0):
        raise VerifyException(f"scale must be positive and finite, got {scale!r}")
    low, high = _SCALE_RANGE[type(expressed)]
    if not low <= scale <= high:
        raise VerifyException(
            f"scale {scale!r} is outside the range [{low!r}, {high!r}] "
            f"of expressed type {expressed}"
        )


@dataclass(frozen=True, init=False)
class QuantizedType(ParametrizedAttribute, TypeAttribute):
    """What every `!quant.uniform` type has: an integer storage type, the float
    type it stands for, and the range of storage values it may use.

    As in MLIR, the storage type is a signless integer (`i8`) and its signedness
    is a separate parameter; the text spells it `i8` (signed) or `u8` (unsigned).
    """

    storage_type: IntegerType
    signedness: SignednessAttr
    expressed_type: ExpressedType
    storage_min_attr: IntAttr
    storage_max_attr: IntAttr

    @property
    def is_signed(self) -> bool:
        return self.signedness.data == Signedness.SIGNED

    @property
    def storage_width(self) -> int:
        return self.storage_type.width.data

    @property
    def storage_min(self) -> int:
        return self.storage_min_attr.data

    @property
    def storage_max(self) -> int:
        return self.storage_max_attr.data

    @property
    def storage_dtype_name(self) -> str:
        """The storage as a torch dtype name (`"int8"`, `"uint8"`, `"int4"`, ...):
        `getattr(torch, t.storage_dtype_name)`, without this module importing torch."""
        return f"{'int' if self.is_signed else 'uint'}{self.storage_width}"

    @property
    def container_dtype_name(self) -> str:
        """The torch dtype name of the tensors that hold the storage: the storage's own from 8
        bits up, `"int8"`/`"uint8"` for narrower storage (one `i4`/`u4` value per byte, as the
        parameter store and the `quantized_decomposed` ops hold them; kernels pack them)."""
        if self.storage_width < 8:
            return "int8" if self.is_signed else "uint8"
        return self.storage_dtype_name

    @property
    def expressed_dtype_name(self) -> str:
        """The expressed type as a torch dtype name (`"float32"`, `"bfloat16"`, ...)."""
        return _EXPRESSED_DTYPE_NAME[type(self.expressed_type)]

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def _storage_parameters(
        storage: str,
        storage_min: int | None,
        storage_max: int | None,
        expressed: ExpressedType,
    ) -> tuple[IntegerType, SignednessAttr, ExpressedType, IntAttr, IntAttr]:
        """The storage parameters of a type, built (and verified) once per storage, range and
        expressed type: a program's thousands of types share a few."""
        width, signed = _read_storage(storage)
        full_min, full_max = integer_range(width, signed)
        return (
            IntegerType(width),
            SignednessAttr(Signedness.SIGNED if signed else Signedness.UNSIGNED),
            expressed,
            IntAttr(full_min if storage_min is None else int(storage_min)),
            IntAttr(full_max if storage_max is None else int(storage_max)),
        )

    def verify(self) -> None:
        if self.storage_type.signedness.data != Signedness.SIGNLESS:
            raise VerifyException(
                f"storage type must be a signless integer type, got {self.storage_type}"
            )
        if self.signedness.data == Signedness.SIGNLESS:
            raise VerifyException("storage signedness must be signed or unsigned")
        _verify_width(self.storage_width)
        if self.storage_min >= self.storage_max:
            raise VerifyException(
                f"storage min {self.storage_min} must be less than storage max {self.storage_max}"
            )
        full_min, full_max = integer_range(self.storage_width, self.is_signed)
        if self.storage_min < full_min or self.storage_max > full_max:
            raise VerifyException(
                f"storage range [{self.storage_min}, {self.storage_max}] is outside "
                f"[{full_min}, {full_max}], the range of {self._storage_spelling()}"
            )

    def _verify_zero_point(self, zero_point: int) -> None:
        if not self.storage_min <= zero_point <= self.storage_max:
            raise VerifyException(
                f"zero point {zero_point} is outside the storage range "
                f"[{self.storage_min}, {self.storage_max}]"
            )

    def _verify_zero_points(self, zero_points: array.array) -> None:
        if min(zero_points) < self.storage_min or max(zero_points) > self.storage_max:
            self._verify_zero_point(next(z for z in zero_points if not self.storage_min <= z <= self.storage_max))

    def _storage_spelling(self) -> str:
        return f"{'i' if self.is_signed else 'u'}{self.storage_width}"

    @property
    def storage_name(self) -> str:
        """The storage as the text spells it and `get` takes it: `"u8"`, `"i8"`, ..."""
        return self._storage_spelling()

    def _print_storage_and_expressed(self, printer: Printer) -> None:
        """`i8<-127:127>:f32`, the storage range only when it is not the full one."""
        printer.print_string(self._storage_spelling())
        if (self.storage_min, self.storage_max) != integer_range(
            self.storage_width, self.is_signed
        ):
            printer.print_string(f"<{self.storage_min}:{self.storage_max}>")
        printer.print_string(":")
        printer.print_attribute(self.expressed_type)


@irdl_attr_definition
class UniformQuantizedSubChannelType(QuantizedType):
    """Sub-channel (block-wise, group-wise) affine quantization, MLIR's
    `UniformQuantizedSubChannelType`: the tensor is cut into blocks, and each block has its
    own scale and zero point. `{0:1, 1:32}` gives the block size of the quantized dimensions
    (here rows of one element along dimension 0, groups of 32 along dimension 1); the scales
    and zero points form a table with one entry per block, of the tensor's rank, written as
    nested braces (MLIR's text, `scale:zero_point` with the zero point omitted when 0):

        tensor<2x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{2.0e-02:8, 3.0e-02:7}, {1.0e-02:8, 4.0e-02:9}}>>

    Element `[i, j]` is `real = scales[i, j // 32] * (stored - zero_points[i, j // 32])`. A
    dimension not listed has the block size `size / table size` (the table's size along it is
    1 when a block spans the dimension). This is how group-wise weights (int4 with a scale per
    32 inputs of each output channel) are typed.

    The table is held as two dense attributes (`f64` scales, `i64` zero points, in row-major
    order), so a large one costs bytes, not an attribute per entry; `scale_table_shape` is its
    shape. It shares the name `quant.uniform` with the per-tensor type, which parses all three
    forms."""

    name = "quant.uniform"

    scales_attr: DenseIntOrFPElementsAttr
    zero_points_attr: DenseIntOrFPElementsAttr
    quantized_dimensions_attr: ArrayAttr[IntAttr]
    block_sizes_attr: ArrayAttr[IntAttr]

    @classmethod
    def get(
        cls,
        storage: str,
        scales: Sequence[float] | bytes,
        zero_points: Sequence[int] | bytes,
        table_shape: Sequence[int],
        block_sizes: Mapping[int, int],
        *,
        storage_min: int | None = None,
        storage_max: int | None = None,
        expressed: ExpressedType = f32,
    ) -> UniformQuantizedSubChannelType:
        """`get("u4", scales, zero_points, [rows, groups], {0: 1, 1: 32})`: the table in
        row-major order, as numbers or as the raw bytes of float64 scales and int64 zero
        points (what `torch.Tensor.numpy().tobytes()` gives)."""
        shape = [int(d) for d in table_shape]
        return cls(
            *cls._storage_parameters(storage, storage_min, storage_max, expressed),
            _table(f64, scales, "d", shape),
            _table(i64, zero_points, "q", shape),
            ArrayAttr(IntAttr(int(d)) for d in block_sizes),
            ArrayAttr(IntAttr(int(b)) for b in block_sizes.values()),
        )

    @property
    def scale_table_shape(self) -> tuple[int, ...]:
        return tuple(self.scales_attr.get_shape())

    @property
    def scales_bytes(self) -> bytes:
        """The scales, row-major, as native float64 bytes (`torch.frombuffer(..., dtype=float64)`)."""
        return self.scales_attr.data.data

    @property
    def zero_points_bytes(self) -> bytes:
        """The zero points, row-major, as native int64 bytes."""
        return self.zero_points_attr.data.data

    @property
    def scales(self) -> tuple[float, ...]:
        return tuple(array.array("d", self.scales_bytes))

    @property
    def zero_points(self) -> tuple[int, ...]:
        return tuple(array.array("q", self.zero_points_bytes))

    @property
    def block_sizes(self) -> dict[int, int]:
        """The quantized dimensions and their block sizes, as the text lists them."""
        return {d.data: b.data for d, b in zip(self.quantized_dimensions_attr, self.block_sizes_attr)}

    def block_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """The block size along every dimension of a tensor of static `shape`."""
        listed = self.block_sizes
        return tuple(listed.get(d, size // max(entries, 1))
                     for d, (size, entries) in enumerate(zip(shape, self.scale_table_shape)))

    def verify(self) -> None:
        super().verify()
        shape = self.scale_table_shape
        if self.scales_attr.get_element_type() != f64 or self.zero_points_attr.get_element_type() != i64:
            raise VerifyException("a sub-channel table holds f64 scales and i64 zero points")
        if tuple(self.zero_points_attr.get_shape()) != shape:
            raise VerifyException(f"sub-channel scales of shape {list(shape)} but zero points of shape "
                                  f"{list(self.zero_points_attr.get_shape())}")
        entries = math.prod(shape)
        if not shape or entries == 0 or len(self.scales_bytes) != 8 * entries \
                or len(self.zero_points_bytes) != 8 * entries:
            raise VerifyException(f"a sub-channel table needs at least one entry per dimension, "
                                  f"got shape {list(shape)}")
        if len(self.quantized_dimensions_attr) != len(self.block_sizes_attr):
            raise VerifyException("one block size per quantized dimension")
        dims = [d.data for d in self.quantized_dimensions_attr]
        if len(set(dims)) != len(dims):
            raise VerifyException(f"quantized dimensions {dims} repeat one")
        for dim, block in zip(dims, (b.data for b in self.block_sizes_attr)):
            if not 0 <= dim < len(shape):
                raise VerifyException(f"illegal quantized dimension: {dim} (the table has rank {len(shape)})")
            if block < 1:
                raise VerifyException(f"illegal block size {block} for dimension {dim}")
        _verify_scales(array.array("d", self.scales_bytes), self.expressed_type)
        self._verify_zero_points(array.array("q", self.zero_points_bytes))

    def verify_container(self, container: Attribute) -> None:
        """The tensor holding values of this type: of the table's rank, each dimension the
        table's size times the block size (or a multiple of the table's size, unlisted)."""
        if not isinstance(container, TensorType):
            raise VerifyException(f"scalar types may not use sub-channel quantization, got {self}")
        shape, table = container.get_shape(), self.scale_table_shape
        if len(shape) != len(table):
            raise VerifyException(f"a sub-channel table of rank {len(table)} for a tensor of rank {len(shape)}")
        listed = self.block_sizes
        for dim, (size, entries) in enumerate(zip(shape, table)):
            if size == DYNAMIC_INDEX:
                continue
            if dim in listed and size != entries * listed[dim]:
                raise VerifyException(f"dimension {dim} of size {size} is not {entries} blocks of {listed[dim]}")
            if dim not in listed and size % entries:
                raise VerifyException(f"dimension {dim} of size {size} does not split into {entries} blocks")

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            self._print_storage_and_expressed(printer)
            blocks = ", ".join(f"{d}:{b}" for d, b in self.block_sizes.items())
            printer.print_string(f":{{{blocks}}}, ")
            pairs = list(map(_format_scale_zero, array.array("d", self.scales_bytes),
                             array.array("q", self.zero_points_bytes)))
            printer.print_string(_nested(pairs, self.scale_table_shape))


def _nested(entries: list[str], shape: Sequence[int]) -> str:
    """Row-major `entries` as MLIR's nested braces for a table of `shape` (`, ` between)."""
    if len(shape) == 1:
        return "{" + ", ".join(entries) + "}"
    step = len(entries) // shape[0]
    return "{" + ", ".join(_nested(entries[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])) + "}"


def _parse_nested_table(parser: AttrParser, parse_entry) -> tuple[list, list[int]]:
    """MLIR's nested-brace table: its entries row-major, and its shape (rectangular)."""
    start = parser.pos
    if parser._current_token.kind != MLIRTokenKind.L_BRACE:
        return [parse_entry()], []
    rows = parser.parse_comma_separated_list(
        parser.Delimiter.BRACES, lambda: _parse_nested_table(parser, parse_entry), " for sub-channel scales")
    shapes = {tuple(shape) for _, shape in rows}
    if len(shapes) != 1:
        parser.raise_error("sub-channel scales must form a rectangular table", start, parser.pos)
    return [entry for entries, _ in rows for entry in entries], [len(rows), *shapes.pop()]


@irdl_attr_definition
class UniformQuantizedType(QuantizedType):
    """Per-tensor affine quantization: `real = scale * (stored - zero_point)`.

    `!quant.uniform<i8:f32, 5.000000e-02:-3>`
    """

    name = "quant.uniform"

    scale_attr: FloatData
    zero_point_attr: IntAttr

    @property
    def scale(self) -> float:
        return self.scale_attr.data

    @property
    def zero_point(self) -> int:
        return self.zero_point_attr.data

    @classmethod
    def get(
        cls,
        storage: str,
        scale: float,
        zero_point: int = 0,
        *,
        storage_min: int | None = None,
        storage_max: int | None = None,
        expressed: ExpressedType = f32,
    ) -> UniformQuantizedType:
        """`get("u8", 0.05, 128)` is `!quant.uniform<u8:f32, 5.000000e-02:128>`;
        the storage range defaults to the full range of the storage type."""
        return cls(
            *cls._storage_parameters(storage, storage_min, storage_max, expressed),
            FloatData(float(scale)),
            IntAttr(int(zero_point)),
        )

    def verify(self) -> None:
        super().verify()
        _verify_scale(self.scale, self.expressed_type)
        self._verify_zero_point(self.zero_point)

    @classmethod
    def new(  # pyright: ignore[reportIncompatibleMethodOverride]
        cls, params: Sequence[Attribute]
    ) -> QuantizedType:
        # MLIR spells both uniform types `!quant.uniform`, but an xDSL context maps a
        # name to one class, and its parser builds every parsed type with that class's
        # `new`: this is where parsed per-axis parameters (an array of scales where the
        # per-tensor type has a single scale) become the per-axis type.
        if isinstance(params[5], DenseIntOrFPElementsAttr):
            if len(params) == 8:  # two tables and an axis
                return UniformQuantizedPerAxisType.new(params)
            return UniformQuantizedSubChannelType.new(params)
        return super().new(params)

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        """Parse any `!quant.uniform` form (per tensor, per axis or sub-channel), as MLIR does."""
        start = parser.pos
        parser.parse_punctuation("<")
        storage_pos = parser.pos
        try:
            width, signed = _read_storage(parser.parse_identifier(" for the storage type"))
        except VerifyException as e:
            parser.raise_error(str(e), storage_pos, parser.pos)
        if parser.parse_optional_punctuation("<"):
            storage_min = parser.parse_integer(allow_boolean=False)
            parser.parse_punctuation(":")
            storage_max = parser.parse_integer(allow_boolean=False)
            parser.parse_punctuation(">")
        else:
            storage_min, storage_max = integer_range(width, signed)
        parser.parse_punctuation(":")
        expressed_pos = parser.pos
        expressed = parser.parse_type()
        if not isinstance(expressed, ExpressedType):
            parser.raise_error(
                f"expressed type must be f16, bf16, f32 or f64, got {expressed}",
                expressed_pos,
                parser.pos,
            )
        axis = None
        blocks: list[tuple[int, int]] | None = None
        if parser.parse_optional_punctuation(":"):
            if parser._current_token.kind == MLIRTokenKind.L_BRACE:

                def parse_block() -> tuple[int, int]:
                    dim = parser.parse_integer(allow_boolean=False)
                    parser.parse_punctuation(":")
                    return dim, parser.parse_integer(allow_boolean=False)

                blocks = parser.parse_comma_separated_list(
                    parser.Delimiter.BRACES, parse_block, " for sub-channel block sizes")
            else:
                axis = parser.parse_integer(allow_boolean=False)
        parser.parse_punctuation(",")

        def parse_scale_zero() -> tuple[float, int]:
            scale = _parse_scale(parser)
            if parser.parse_optional_punctuation(":"):
                return scale, parser.parse_integer(allow_boolean=False)
            return scale, 0

        if blocks is not None:
            table_pos = parser.pos
            if parser._current_token.kind != MLIRTokenKind.L_BRACE:
                parser.raise_error("expected '{' for sub-channel scales", table_pos, parser.pos)
            pairs, shape = _parse_nested_table(parser, parse_scale_zero)
            try:
                tables = (_table(f64, [scale for scale, _ in pairs], "d", shape),
                          _table(i64, [zero_point for _, zero_point in pairs], "q", shape))
            except OverflowError:
                parser.raise_error("zero point out of range", table_pos, parser.pos)
            quant_params = (
                *tables,
                ArrayAttr(IntAttr(dim) for dim, _ in blocks),
                ArrayAttr(IntAttr(size) for _, size in blocks),
            )
        elif axis is None:
            scale, zero_point = parse_scale_zero()
            quant_params = (FloatData(scale), IntAttr(zero_point))
        else:
            table_pos = parser.pos
            pairs = parser.parse_comma_separated_list(
                parser.Delimiter.BRACES, parse_scale_zero, " for per-axis scales"
            )
            try:
                tables = _per_axis_tables([scale for scale, _ in pairs], [zero_point for _, zero_point in pairs])
            except OverflowError:
                parser.raise_error("zero point out of range", table_pos, parser.pos)
            quant_params = (*tables, IntAttr(axis))
        end = parser.pos
        parser.parse_punctuation(">")
        params = (
            IntegerType(width),
            SignednessAttr(Signedness.SIGNED if signed else Signedness.UNSIGNED),
            expressed,
            IntAttr(storage_min),
            IntAttr(storage_max),
            *quant_params,
        )
        # Build the type once here, so that an invalid one is a parse error located
        # at its text rather than a bare VerifyException from the parser's own `new`.
        try:
            cls.new(params)
        except VerifyException as e:
            parser.raise_error(str(e), start, end + 1)
        return params

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            self._print_storage_and_expressed(printer)
            printer.print_string(", " + _format_scale_zero(self.scale, self.zero_point))


@irdl_attr_definition
class UniformQuantizedPerAxisType(QuantizedType):
    """Per-axis (per-channel) affine quantization: slice `k` of dimension `axis`
    has its own `scales[k]` and `zero_points[k]`.

    `!quant.uniform<i8:f32:0, {1.000000e-01,2.000000e-01:1}>`

    It shares the name `quant.uniform` with `UniformQuantizedType`, which parses
    both forms; only that class is registered with the dialect. Like the sub-channel
    type, it holds its scales and zero points as two dense 1-d tables (`f64`, `i64`):
    a weight's type is built, verified, hashed and compared as bytes, not as an
    attribute per channel (800 types of 64 channels were 100,000 attributes)."""

    name = "quant.uniform"

    scales_attr: DenseIntOrFPElementsAttr
    zero_points_attr: DenseIntOrFPElementsAttr
    axis_attr: IntAttr

    @property
    def scales(self) -> tuple[float, ...]:
        return tuple(array.array("d", self.scales_attr.data.data))

    @property
    def zero_points(self) -> tuple[int, ...]:
        return tuple(array.array("q", self.zero_points_attr.data.data))

    @property
    def axis(self) -> int:
        """The quantized dimension."""
        return self.axis_attr.data

    @classmethod
    def get(
        cls,
        storage: str,
        scales: Sequence[float] | bytes,
        zero_points: Sequence[int] | bytes,
        axis: int,
        *,
        storage_min: int | None = None,
        storage_max: int | None = None,
        expressed: ExpressedType = f32,
    ) -> UniformQuantizedPerAxisType:
        """`get("i8", [0.1, 0.2], [0, 0], axis=0)` is
        `!quant.uniform<i8:f32:0, {1.000000e-01,2.000000e-01}>`; scales and zero points may
        also be the native bytes of float64 and int64 values."""
        return cls(
            *cls._storage_parameters(storage, storage_min, storage_max, expressed),
            *_per_axis_tables(scales, zero_points),
            IntAttr(int(axis)),
        )

    def verify(self) -> None:
        super().verify()
        for table, element in ((self.scales_attr, f64), (self.zero_points_attr, i64)):
            if table.get_element_type() != element or len(table.get_shape()) != 1:
                raise VerifyException("a per-axis type holds 1-d tables of f64 scales and i64 zero points")
        scales = array.array("d", self.scales_attr.data.data)
        zero_points = array.array("q", self.zero_points_attr.data.data)
        if not scales:
            raise VerifyException("per-axis type needs at least one scale")
        if len(scales) != len(zero_points):
            raise VerifyException(
                f"per-axis type has {len(scales)} scales but {len(zero_points)} zero points"
            )
        if self.axis < 0:
            raise VerifyException(f"quantized dimension must be non-negative, got {self.axis}")
        _verify_scales(scales, self.expressed_type)
        self._verify_zero_points(zero_points)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            self._print_storage_and_expressed(printer)
            params = ",".join(map(_format_scale_zero, self.scales, self.zero_points))
            printer.print_string(f":{self.axis}, {{{params}}}")


def _per_axis_tables(scales: Sequence[float] | bytes, zero_points: Sequence[int] | bytes
                     ) -> tuple[DenseIntOrFPElementsAttr, DenseIntOrFPElementsAttr]:
    """The dense scale and zero point tables of a per-axis type, each of its own length (the
    verifier says when they differ)."""
    return (_table(f64, scales, "d", [_entries(scales)]),
            _table(i64, zero_points, "q", [_entries(zero_points)]))


def _entries(values: Sequence | bytes) -> int:
    """How many 8-byte values `values` holds (numbers, or their bytes)."""
    return len(values) // 8 if isinstance(values, bytes) else len(values)


@irdl_attr_definition
class AnyQuantizedType(QuantizedType):
    """A quantized type whose scale and zero point are not part of the type: MLIR's
    `!quant.any<u8:f32>` (`!quant.any<i8<-127:127>:f32>` with a storage range). qir gives it
    to dynamically quantized values, whose parameters are SSA values computed at run time
    (`quant.choose_qparams`, `quant.dynamic_qcast`)."""

    name = "quant.any"

    @classmethod
    def get(
        cls,
        storage: str,
        *,
        storage_min: int | None = None,
        storage_max: int | None = None,
        expressed: ExpressedType = f32,
    ) -> AnyQuantizedType:
        """`get("u8")` is `!quant.any<u8:f32>`; the storage range defaults to the full one."""
        return cls(*cls._storage_parameters(storage, storage_min, storage_max, expressed))

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        start = parser.pos
        parser.parse_punctuation("<")
        storage_pos = parser.pos
        try:
            width, signed = _read_storage(parser.parse_identifier(" for the storage type"))
        except VerifyException as e:
            parser.raise_error(str(e), storage_pos, parser.pos)
        storage_min, storage_max = integer_range(width, signed)
        if parser.parse_optional_punctuation("<"):
            storage_min = parser.parse_integer(allow_boolean=False)
            parser.parse_punctuation(":")
            storage_max = parser.parse_integer(allow_boolean=False)
            parser.parse_punctuation(">")
        parser.parse_punctuation(":")
        expressed_pos = parser.pos
        expressed = parser.parse_type()
        if not isinstance(expressed, ExpressedType):
            parser.raise_error(
                f"expressed type must be f16, bf16, f32 or f64, got {expressed}",
                expressed_pos,
                parser.pos,
            )
        end = parser.pos
        parser.parse_punctuation(">")
        params = (
            IntegerType(width),
            SignednessAttr(Signedness.SIGNED if signed else Signedness.UNSIGNED),
            expressed,
            IntAttr(storage_min),
            IntAttr(storage_max),
        )
        try:
            cls.new(params)
        except VerifyException as e:
            parser.raise_error(str(e), start, end + 1)
        return params

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            self._print_storage_and_expressed(printer)


def has_parameters(qtype: Attribute) -> bool:
    """Whether a quantized type carries its scale and zero point (`!quant.uniform`), rather
    than taking them at run time (`!quant.any`)."""
    return isinstance(qtype, UniformQuantizedType | UniformQuantizedPerAxisType | UniformQuantizedSubChannelType)


_AttributeT = TypeVar("_AttributeT", bound=Attribute)


def _element_type(type: Attribute) -> Attribute:
    return type.element_type if isinstance(type, TensorType) else type


def _first_element(kind: type[_AttributeT], *types: Attribute) -> _AttributeT:
    """The element type of the first of `types` whose element type is a `kind`."""
    return next(element for t in types if isinstance(element := _element_type(t), kind))


@dataclass(frozen=True)
class _ScalarOrTensorOf(AttrConstraint):
    """A scalar of one of `kinds` or a tensor of them. Unlike `c | TensorType.constr(c)`,
    whose failure reads "Unexpected attribute i8", it says what was expected."""

    kinds: tuple[type[Attribute], ...]
    expected: str

    def verify(self, attr: Attribute, constraint_context: VerificationContext) -> None:
        if not isinstance(_element_type(attr), self.kinds):
            raise VerifyException(f"expected {self.expected}, got {attr}")

    def mapping_type_vars(
        self, type_var_mapping: Mapping[TypeVar, AttrConstraint | IntConstraint]
    ) -> _ScalarOrTensorOf:
        return self


_FLOAT_VALUE = _ScalarOrTensorOf(
    get_args(ExpressedType), "a float type (f16, bf16, f32, f64) or a tensor of it"
)
_QUANTIZED_VALUE = _ScalarOrTensorOf((QuantizedType,), "a !quant.uniform type or a tensor of it")
_STORAGE_CAST_VALUE = _ScalarOrTensorOf(
    (QuantizedType, IntegerType), "a !quant.uniform or integer type or a tensor of it"
)


def _verify_same_shape(input: Attribute, result: Attribute) -> None:
    def shape(type: Attribute) -> tuple[int, ...] | None:
        return type.get_shape() if isinstance(type, TensorType) else None

    if shape(input) != shape(result):
        raise VerifyException(
            f"operand type {input} and result type {result} must have the same shape"
        )


def _verify_per_axis(quantized: QuantizedType, container: Attribute) -> None:
    """A per-axis type needs a tensor whose quantized dimension has one slice per scale (a
    sub-channel type, one whose dimensions are its blocks)."""
    if isinstance(quantized, UniformQuantizedSubChannelType):
        quantized.verify_container(container)
        return
    if not isinstance(quantized, UniformQuantizedPerAxisType):
        return
    if not isinstance(container, TensorType):
        raise VerifyException(f"scalar types may not use per-axis quantization, got {quantized}")
    rank = container.get_num_dims()
    if quantized.axis >= rank:
        raise VerifyException(
            f"quantized dimension {quantized.axis} out of range for tensor of rank {rank}"
        )
    size = container.get_shape()[quantized.axis]
    scales = len(quantized.scales_attr.data.data) // 8  # float64 entries
    if size != DYNAMIC_INDEX and size != scales:
        raise VerifyException(
            f"per-axis type has {scales} scales but dimension {quantized.axis} has size {size}"
        )


def _verify_has_parameters(op: Operation, quantized: QuantizedType) -> None:
    if not has_parameters(quantized):
        raise VerifyException(
            f"{op.name} needs a type with its parameters, got {quantized}: values whose "
            "parameters are chosen at run time use quant.dynamic_qcast / quant.dynamic_dcast"
        )


class _CastOp(IRDLOperation):
    """An elementwise cast between a value and its quantized counterpart, of the same shape."""

    traits = traits_def(Pure())

    assembly_format = "$input attr-dict `:` type($input) `to` type($result)"

    def __init__(self, input: SSAValue | Operation, result_type: Attribute):
        # One operand and one result: built directly, as `Operation.create` builds it (convert
        # builds one or two per observer; IRDL's generic builder would only check the counts).
        Operation.__init__(self, operands=[SSAValue.get(input)], result_types=[result_type])


@irdl_op_definition
class QuantizeCastOp(_CastOp):
    """Float to quantized: `quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<...>>`.

    The operand's element type is the quantized type's expressed type.
    """

    name = "quant.qcast"

    input = operand_def(_FLOAT_VALUE)
    result = result_def(_QUANTIZED_VALUE)

    @property
    def quantized_type(self) -> QuantizedType:
        return _first_element(QuantizedType, self.result.type)

    def verify_(self) -> None:
        _verify_same_shape(self.input.type, self.result.type)
        quantized = self.quantized_type
        element = _element_type(self.input.type)
        if element != quantized.expressed_type:
            raise VerifyException(
                f"operand element type {element} is not the expressed type "
                f"{quantized.expressed_type} of {quantized}"
            )
        _verify_has_parameters(self, quantized)
        _verify_per_axis(quantized, self.result.type)


@irdl_op_definition
class DequantizeCastOp(_CastOp):
    """Quantized to float: `quant.dcast %q : tensor<4x!quant.uniform<...>> to tensor<4xf32>`.

    The result's element type is the quantized type's expressed type.
    """

    name = "quant.dcast"

    input = operand_def(_QUANTIZED_VALUE)
    result = result_def(_FLOAT_VALUE)

    @property
    def quantized_type(self) -> QuantizedType:
        return _first_element(QuantizedType, self.input.type)

    def verify_(self) -> None:
        _verify_same_shape(self.input.type, self.result.type)
        quantized = self.quantized_type
        element = _element_type(self.result.type)
        if element != quantized.expressed_type:
            raise VerifyException(
                f"result element type {element} is not the expressed type "
                f"{quantized.expressed_type} of {quantized}"
            )
        _verify_has_parameters(self, quantized)
        _verify_per_axis(quantized, self.input.type)


@irdl_op_definition
class StorageCastOp(_CastOp):
    """Quantized to its integer storage or back, without changing the bits:
    `quant.scast %q : tensor<4x!quant.uniform<i8:f32, ...>> to tensor<4xi8>`.

    The integer type has the storage width and is signless (`i8`, as in MLIR) or
    of the storage's signedness (`si8`; `ui8` for `u8` storage).
    """

    name = "quant.scast"

    input = operand_def(_STORAGE_CAST_VALUE)
    result = result_def(_STORAGE_CAST_VALUE)

    @property
    def quantized_type(self) -> QuantizedType:
        return _first_element(QuantizedType, self.input.type, self.result.type)

    @property
    def integer_type(self) -> IntegerType:
        return _first_element(IntegerType, self.input.type, self.result.type)

    def verify_(self) -> None:
        _verify_same_shape(self.input.type, self.result.type)
        input_element = _element_type(self.input.type)
        result_element = _element_type(self.result.type)
        if isinstance(input_element, QuantizedType) == isinstance(result_element, QuantizedType):
            raise VerifyException(
                f"scast converts between a quantized type and an integer type, "
                f"got {input_element} to {result_element}"
            )
        quantized, integer = self.quantized_type, self.integer_type
        signed = IntegerType(
            quantized.storage_width,
            Signedness.SIGNED if quantized.is_signed else Signedness.UNSIGNED,
        )
        if integer not in (quantized.storage_type, signed):
            raise VerifyException(
                f"integer type {integer} does not match the storage of {quantized}: "
                f"expected {quantized.storage_type} or {signed}"
            )
        quantized_side = (
            self.input.type if isinstance(input_element, QuantizedType) else self.result.type
        )
        _verify_per_axis(quantized, quantized_side)


def is_per_token(scale_type: Attribute) -> bool:
    """Whether run-time parameters of this type are one per row (per token) rather than one
    per tensor (rank 0)."""
    return isinstance(scale_type, TensorType) and scale_type.get_num_dims() > 0


def _verify_run_time_parameters(op: Operation, input: Attribute, scale: Attribute,
                                zero_point: Attribute) -> None:
    """Scale `tensor<f32>` and zero point `tensor<i64>` of rank 0 (per tensor), or of the input's
    shape with the last dimension 1 (per token)."""
    if not isinstance(scale, TensorType) or scale.element_type != f32:
        raise VerifyException(f"{op.name}: the scale must be a tensor of f32, got {scale}")
    if not isinstance(zero_point, TensorType) or zero_point.element_type != i64:
        raise VerifyException(f"{op.name}: the zero point must be a tensor of i64, got {zero_point}")
    if scale.get_shape() != zero_point.get_shape():
        raise VerifyException(f"{op.name}: the scale {scale} and the zero point {zero_point} differ in shape")
    shape = scale.get_shape()
    if not shape:
        return
    input_shape = input.get_shape() if isinstance(input, TensorType) else ()
    expected = (*input_shape[:-1], 1) if input_shape else None
    if expected is None or shape != expected:
        raise VerifyException(
            f"{op.name}: parameters of shape {list(shape)} are neither per tensor (rank 0) nor per "
            f"token (the input's shape with a last dimension of 1, {list(expected or ())})"
        )


@irdl_op_definition
class ChooseQParamsOp(IRDLOperation):
    """The scale and zero point that map the range of `input` onto `quantized_type`'s storage
    range, computed when the program runs (dynamic quantization):

        %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<u8:f32>}
                   : tensor<?x384xf32> -> (tensor<f32>, tensor<i64>)
        %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<i8:f32>, symmetric}
                   : tensor<?x32x384xf32> -> (tensor<?x32x1xf32>, tensor<?x32x1xi64>)

    One pair for the tensor (results of rank 0) or one per row of the last dimension (per
    token: the input's shape, last dimension 1). Exactly, in float32 arithmetic (`qmin`, `qmax`
    the storage range; `round` half to even; `eps` = 2^-23, float32's machine epsilon):

    * per tensor (torch's `quantized_decomposed.choose_qparams.tensor`): `lo = min(min(x), 0)`,
      `hi = max(max(x), 0)`, `s = max((hi - lo) / (qmax - qmin), eps)`,
      `z = clamp(qmin - round(lo / s), qmin, qmax)`;
    * per tensor, `symmetric` (`choose_qparams_symmetric.tensor`): `s = max(max(-lo, hi) /
      ((qmax - qmin) / 2), eps)`, `z = 0` for signed storage, 128 for `u8` (full range only);
    * per token (`choose_qparams_per_token_asymmetric`; `i8` storage, full range), per row:
      `lo`, `hi` and `s` as per tensor with qmin = -128, qmax = 127; `a = lo / s`, `b = hi / s`;
      `z = round(clamp(qmin + a + qmax + b > 0 ? qmin - a : qmax - b, qmin, qmax))`;
    * per token, `symmetric` (`choose_qparams_per_token`; `i8` storage), per row:
      `s = max(max(|x|), 1e-5) / 127`, `z = 0`.
    """

    name = "quant.choose_qparams"

    input = operand_def(TensorType.constr(irdl_to_attr_constraint(ExpressedType)))
    quantized_type = prop_def(AnyQuantizedType)
    symmetric = opt_prop_def(UnitAttr)
    scale = result_def(TensorType)
    zero_point = result_def(TensorType)

    traits = traits_def(Pure())

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = (
        "$input attr-dict `:` type($input) `->` `(` type($scale) `,` type($zero_point) `)`"
    )

    def __init__(
        self,
        input: SSAValue | Operation,
        quantized_type: AnyQuantizedType,
        symmetric: bool = False,
        per_token: bool = False,
    ):
        value = SSAValue.get(input)
        shape: list[int] = []
        if per_token:
            shape = [*value.type.get_shape()[:-1], 1]
        super().__init__(
            operands=[value],
            properties={"quantized_type": quantized_type}
            | ({"symmetric": UnitAttr()} if symmetric else {}),
            result_types=[TensorType(f32, shape), TensorType(i64, shape)],
        )

    @property
    def per_token(self) -> bool:
        return is_per_token(self.scale.type)

    @property
    def is_symmetric(self) -> bool:
        return self.symmetric is not None

    @property
    def is_signed(self) -> bool:
        return self.quantized_type.is_signed

    @property
    def storage_min(self) -> int:
        return self.quantized_type.storage_min

    @property
    def storage_max(self) -> int:
        return self.quantized_type.storage_max

    def verify_(self) -> None:
        verify_choose_qparams(self)


def verify_choose_qparams(op: Operation) -> None:
    """The checks of `quant.choose_qparams`, for any op with its fields (a backend's own form)."""
    qtype = op.quantized_type
    element = _element_type(op.input.type)
    if element != qtype.expressed_type:
        raise VerifyException(
            f"operand element type {element} is not the expressed type "
            f"{qtype.expressed_type} of {qtype}"
        )
    _verify_run_time_parameters(op, op.input.type, op.scale.type, op.zero_point.type)
    full = (qtype.storage_min, qtype.storage_max) == integer_range(
        qtype.storage_width, qtype.is_signed
    )
    if op.per_token:
        narrow = (qtype.storage_min, qtype.storage_max) == (-127, 127) and op.is_symmetric
        if qtype.storage_name != "i8" or not (full or narrow):
            raise VerifyException(
                f"per-token parameters are chosen for i8 storage (full range, or [-127:127] "
                f"when symmetric), not {qtype}"
            )
    elif qtype.storage_width not in (8, 16, 32) or qtype.storage_name == "u32":
        raise VerifyException(
            f"run-time parameters are chosen for u8, i8, u16, i16 or i32 storage, not {qtype}"
        )
    elif op.is_symmetric and not qtype.is_signed and not (full and qtype.storage_width == 8):
        raise VerifyException(
            f"symmetric parameters for unsigned storage take the full u8 range (zero point "
            f"128), not {qtype}"
        )


class _DynamicCastOp(IRDLOperation):
    """A cast whose scale and zero point are operands (see `ChooseQParamsOp`)."""

    traits = traits_def(Pure())

    assembly_format = (
        "$input `,` $scale `,` $zero_point attr-dict `:` `(` type($input) `,` type($scale) `,` "
        "type($zero_point) `)` `->` type($result)"
    )

    def __init__(self, input: SSAValue | Operation, scale: SSAValue | Operation,
                 zero_point: SSAValue | Operation, result_type: Attribute):
        super().__init__(operands=[input, scale, zero_point], result_types=[result_type])

    @property
    def per_token(self) -> bool:
        return is_per_token(self.scale.type)

    def _verify(self, float_side: Attribute, quantized_side: Attribute) -> None:
        _verify_same_shape(self.input.type, self.result.type)
        quantized = self.quantized_type
        if not isinstance(quantized, AnyQuantizedType):
            raise VerifyException(
                f"{self.name} takes its parameters as operands: the quantized type is a "
                f"!quant.any, got {quantized}"
            )
        element = _element_type(float_side)
        if element != quantized.expressed_type:
            raise VerifyException(
                f"float element type {element} is not the expressed type "
                f"{quantized.expressed_type} of {quantized}"
            )
        if not isinstance(float_side, TensorType):
            raise VerifyException(f"{self.name} casts tensors, got {float_side}")
        _verify_run_time_parameters(self, float_side, self.scale.type, self.zero_point.type)


@irdl_op_definition
class DynamicQuantizeCastOp(_DynamicCastOp):
    """Float to quantized with run-time parameters (from `quant.choose_qparams`):

        %q = quant.dynamic_qcast %x, %s, %z : (tensor<?x4xf32>, tensor<f32>, tensor<i64>)
               -> tensor<?x4x!quant.any<u8:f32>>

    In float32 arithmetic, `round` half to even, clamped to the storage range: per tensor
    `clamp(round(x * (1 / s)) + z)` (torch's `quantize_per_tensor.tensor`), per token
    `clamp(round(x * (1 / s) + z))` with the row's `s` and `z` (`quantize_per_token`; the zero
    point is added before rounding there)."""

    name = "quant.dynamic_qcast"

    input = operand_def(_FLOAT_VALUE)
    scale = operand_def(TensorType)
    zero_point = operand_def(TensorType)
    result = result_def(_QUANTIZED_VALUE)

    @property
    def quantized_type(self) -> QuantizedType:
        return _first_element(QuantizedType, self.result.type)

    def verify_(self) -> None:
        self._verify(self.input.type, self.result.type)


@irdl_op_definition
class DynamicDequantizeCastOp(_DynamicCastOp):
    """Quantized with run-time parameters to float: `float32(q - z) * s`, in float32
    (`dequantize_per_tensor.tensor`, `dequantize_per_token`):

        %y = quant.dynamic_dcast %q, %s, %z : (tensor<?x4x!quant.any<u8:f32>>, tensor<f32>,
               tensor<i64>) -> tensor<?x4xf32>"""

    name = "quant.dynamic_dcast"

    input = operand_def(_QUANTIZED_VALUE)
    scale = operand_def(TensorType)
    zero_point = operand_def(TensorType)
    result = result_def(_FLOAT_VALUE)

    @property
    def quantized_type(self) -> QuantizedType:
        return _first_element(QuantizedType, self.input.type)

    def verify_(self) -> None:
        self._verify(self.result.type, self.input.type)


Quant = Dialect(
    "quant",
    [QuantizeCastOp, DequantizeCastOp, StorageCastOp, ChooseQParamsOp, DynamicQuantizeCastOp,
     DynamicDequantizeCastOp],
    [UniformQuantizedType, AnyQuantizedType],
)
