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

    %q = quant.qcast %x : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i8:f32, 0.05:-3>>
    %y = quant.dcast %q : tensor<2x4x!quant.uniform<i8:f32, 0.05:-3>> to tensor<2x4xf32>
    %i = quant.scast %q : tensor<2x4x!quant.uniform<i8:f32, 0.05:-3>> to tensor<2x4xi8>

One departure from MLIR, which prints scales with `%e` (seven significant
digits): a scale that does not survive that is printed with as many digits as
it needs to round-trip as a float64, so that printing never changes numerics.

`quant.choose_qparams` computes a scale and zero point at run time, for dynamic
quantization.
"""

from __future__ import annotations

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
    def expressed_dtype_name(self) -> str:
        """The expressed type as a torch dtype name (`"float32"`, `"bfloat16"`, ...)."""
        return _EXPRESSED_DTYPE_NAME[type(self.expressed_type)]

    @staticmethod
    def _storage_parameters(
        storage: str,
        storage_min: int | None,
        storage_max: int | None,
        expressed: ExpressedType,
    ) -> tuple[IntegerType, SignednessAttr, ExpressedType, IntAttr, IntAttr]:
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
        if isinstance(params[5], ArrayAttr):
            return UniformQuantizedPerAxisType.new(params)
        return super().new(params)

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        """Parse either `!quant.uniform` form (per tensor or per axis), as MLIR does."""
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
        if parser.parse_optional_punctuation(":"):
            axis = parser.parse_integer(allow_boolean=False)
        parser.parse_punctuation(",")

        def parse_scale_zero() -> tuple[float, int]:
            scale = _parse_scale(parser)
            if parser.parse_optional_punctuation(":"):
                return scale, parser.parse_integer(allow_boolean=False)
            return scale, 0

        if axis is None:
            scale, zero_point = parse_scale_zero()
            quant_params = (FloatData(scale), IntAttr(zero_point))
        else:
            pairs = parser.parse_comma_separated_list(
                parser.Delimiter.BRACES, parse_scale_zero, " for per-axis scales"
            )
            quant_params = (
                ArrayAttr(FloatData(scale) for scale, _ in pairs),
                ArrayAttr(IntAttr(zero_point) for _, zero_point in pairs),
                IntAttr(axis),
            )
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
    both forms; only that class is registered with the dialect.
    """

    name = "quant.uniform"

    scales_attr: ArrayAttr[FloatData]
    zero_points_attr: ArrayAttr[IntAttr]
    axis_attr: IntAttr

    @property
    def scales(self) -> tuple[float, ...]:
        return tuple(scale.data for scale in self.scales_attr)

    @property
    def zero_points(self) -> tuple[int, ...]:
        return tuple(zero_point.data for zero_point in self.zero_points_attr)

    @property
    def axis(self) -> int:
        """The quantized dimension."""
        return self.axis_attr.data

    @classmethod
    def get(
        cls,
        storage: str,
        scales: Sequence[float],
        zero_points: Sequence[int],
        axis: int,
        *,
        storage_min: int | None = None,
        storage_max: int | None = None,
        expressed: ExpressedType = f32,
    ) -> UniformQuantizedPerAxisType:
        """`get("i8", [0.1, 0.2], [0, 0], axis=0)` is
        `!quant.uniform<i8:f32:0, {1.000000e-01,2.000000e-01}>`."""
        return cls(
            *cls._storage_parameters(storage, storage_min, storage_max, expressed),
            ArrayAttr(FloatData(float(scale)) for scale in scales),
            ArrayAttr(IntAttr(int(zero_point)) for zero_point in zero_points),
            IntAttr(int(axis)),
        )

    def verify(self) -> None:
        super().verify()
        if not self.scales_attr.data:
            raise VerifyException("per-axis type needs at least one scale")
        if len(self.scales_attr) != len(self.zero_points_attr):
            raise VerifyException(
                f"per-axis type has {len(self.scales_attr)} scales "
                f"but {len(self.zero_points_attr)} zero points"
            )
        if self.axis < 0:
            raise VerifyException(f"quantized dimension must be non-negative, got {self.axis}")
        for scale in self.scales:
            _verify_scale(scale, self.expressed_type)
        for zero_point in self.zero_points:
            self._verify_zero_point(zero_point)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            self._print_storage_and_expressed(printer)
            params = ",".join(map(_format_scale_zero, self.scales, self.zero_points))
            printer.print_string(f":{self.axis}, {{{params}}}")


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
    """A per-axis type needs a tensor whose quantized dimension has one slice per scale."""
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
    if size != DYNAMIC_INDEX and size != len(quantized.scales):
        raise VerifyException(
            f"per-axis type has {len(quantized.scales)} scales "
            f"but dimension {quantized.axis} has size {size}"
        )


class _CastOp(IRDLOperation):
    """An elementwise cast between a value and its quantized counterpart, of the same shape."""

    traits = traits_def(Pure())

    assembly_format = "$input attr-dict `:` type($input) `to` type($result)"

    def __init__(self, input: SSAValue | Operation, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])


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


_SCALE_TYPE = TensorType(f32, [])
_ZERO_POINT_TYPE = TensorType(i64, [])


@irdl_op_definition
class ChooseQParamsOp(IRDLOperation):
    """The scale and zero point that map the range of `input` onto the storage
    type, computed when the program runs (dynamic quantization):

        %scale, %zp = quant.choose_qparams %x {storage_type = ui8} :
            tensor<?x4xf32> -> (tensor<f32>, tensor<i64>)

    `storage_type` is `iN`/`siN` for signed storage, `uiN` for unsigned; with
    `symmetric` the zero point is the middle of the storage range.
    """

    name = "quant.choose_qparams"

    input = operand_def(TensorType.constr(irdl_to_attr_constraint(ExpressedType)))
    storage_type = prop_def(IntegerType)
    symmetric = opt_prop_def(UnitAttr)
    scale = result_def(_SCALE_TYPE)
    zero_point = result_def(_ZERO_POINT_TYPE)

    traits = traits_def(Pure())

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = (
        "$input attr-dict `:` type($input) `->` `(` type($scale) `,` type($zero_point) `)`"
    )

    def __init__(
        self, input: SSAValue | Operation, storage_type: IntegerType, symmetric: bool = False
    ):
        super().__init__(
            operands=[input],
            properties={"storage_type": storage_type}
            | ({"symmetric": UnitAttr()} if symmetric else {}),
            result_types=[_SCALE_TYPE, _ZERO_POINT_TYPE],
        )

    @property
    def is_signed(self) -> bool:
        return self.storage_type.signedness.data != Signedness.UNSIGNED

    @property
    def storage_min(self) -> int:
        return integer_range(self.storage_type.width.data, self.is_signed)[0]

    @property
    def storage_max(self) -> int:
        return integer_range(self.storage_type.width.data, self.is_signed)[1]

    def verify_(self) -> None:
        _verify_width(self.storage_type.width.data)


Quant = Dialect(
    "quant",
    [QuantizeCastOp, DequantizeCastOp, StorageCastOp, ChooseQParamsOp],
    [UniformQuantizedType],
)
