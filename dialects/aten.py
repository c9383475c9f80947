"""The `aten` dialect: what `torch.export` produced, one generic op for all of ATen.

There is one op per exported call, `aten.op`, carrying the overload name
(`"conv2d.default"`), its arguments in schema order and its results. Rather
than one IRDL class per ATen operator (there are thousands, and they change
with every torch release), the op is checked against the operator's own
`torch.ops.aten.<op>.<overload>._schema`: the schema is the single source of
truth, and every op torch.export can produce imports.

Arguments keep the call's structure, so that the emitter can rebuild the exact
call (and so outputs stay bit-identical). Tensor and symbolic-scalar arguments
are SSA operands; everything else is a typed attribute:

    %y = aten.op "conv2d.default"(%x, %w, none, [2, 2]) : (tensor<1x3x8x8xf32>,
             tensor<4x3x3x3xf32>) -> tensor<1x4x3x3xf32>
    %v = aten.op "view.default"(%y, [%n, -1]) : (tensor<?x4xf32>, i64) -> tensor<?x4xf32>
    %z = aten.op "to.dtype"(%x, #aten.dtype<float16>) : ...
    %c = aten.op "full.default"([2], 0.0, dtype = #aten.dtype<float32>) : () -> tensor<2xf32>

In the stored (generic) form each operand position is the attribute
`#aten.operand<i>` inside the `args` array or the `kwargs` dictionary.

Weights are not inline: `aten.param` names an entry of the program's parameter
store (or carries a small `dense<...>` value, for tests), and
`aten.param_update` writes a buffer back, for the buffer mutations of a model
exported in training mode.

Provenance from the exported node rides along as discardable attributes:
`module` (the `nn_module_stack` path, for `set_module_name`), `module_type`
(the module class, for `set_object_type`) and the op's location (`loc(...)`,
printed with `--print-debuginfo`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, ClassVar

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    Float32Type,
    Float64Type,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    NoneAttr,
    NoneType,
    StringAttr,
    TensorType,
    f64,
    i1,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import AttrParser, Parser, UnresolvedOperand
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

# --------------------------------------------------------------------------
# Attributes for torch's enumerations and for operand positions.
# --------------------------------------------------------------------------


class _NamedValueAttr(ParametrizedAttribute):
    """An attribute holding one name, printed bare (`#aten.dtype<float32>`).

    Subclasses declare `value: StringAttr` themselves: xDSL only compares and
    hashes the parameters a class declares."""

    def __init__(self, value: str | StringAttr):
        super().__init__(StringAttr(value) if isinstance(value, str) else value)

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            text = parser.parse_optional_str_literal()
            if text is None:
                text = parser.parse_identifier()
        return [StringAttr(text)]

    def print_parameters(self, printer: Printer) -> None:
        text = self.value.data
        with printer.in_angle_brackets():
            if text.isidentifier():
                printer.print_string(text)
            else:
                printer.print_string_literal(text)


@irdl_attr_definition
class DTypeAttr(_NamedValueAttr):
    """A `torch.dtype` argument, by its torch name: `#aten.dtype<float32>`."""

    name = "aten.dtype"

    value: StringAttr


@irdl_attr_definition
class MemoryFormatAttr(_NamedValueAttr):
    """A `torch.memory_format` argument: `#aten.memory_format<channels_last>`."""

    name = "aten.memory_format"

    value: StringAttr


@irdl_attr_definition
class LayoutAttr(_NamedValueAttr):
    """A `torch.layout` argument: `#aten.layout<strided>`."""

    name = "aten.layout"

    value: StringAttr


@irdl_attr_definition
class DeviceAttr(_NamedValueAttr):
    """A `torch.device` argument: `#aten.device<cpu>`."""

    name = "aten.device"

    value: StringAttr


@irdl_attr_definition
class OperandAttr(ParametrizedAttribute):
    """Stands for the op's i-th operand inside `args`/`kwargs`: `#aten.operand<0>`."""

    name = "aten.operand"

    index: IntAttr

    def __init__(self, index: int):
        super().__init__(IntAttr(index))

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            return [IntAttr(parser.parse_integer(allow_boolean=False))]

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_int(self.index.data)


@irdl_attr_definition
class TrainingModeAttr(_NamedValueAttr):
    """A `bool` argument saying whether the model trains, decided when the emitted module runs:
    `#aten.training<module>` is the module's `.train()`/`.eval()` mode (dropout's `train`);
    `#aten.training<batch_norm>` is that mode unless batch-norm statistics are frozen
    (`batch_norm`'s `training`: batch statistics, running statistics updated). An export bakes
    the mode into constants; `set-training` puts these in their place, so one program trains
    and evaluates (QAT)."""

    name = "aten.training"

    value: StringAttr

    SWITCHES: ClassVar[tuple[str, ...]] = ("module", "batch_norm")

    def verify(self) -> None:
        if self.value.data not in self.SWITCHES:
            raise VerifyException(f"#aten.training<{self.value.data}>: expected one of {', '.join(self.SWITCHES)}")


ENUM_ATTRS: dict[str, type[_NamedValueAttr]] = {
    "ScalarType": DTypeAttr,
    "MemoryFormat": MemoryFormatAttr,
    "Layout": LayoutAttr,
    "Device": DeviceAttr,
}


# --------------------------------------------------------------------------
# Operator schemas.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaArg:
    name: str
    kind: str
    """The base kind: Tensor, int, float, bool, str, Scalar, ScalarType, ..."""
    is_list: bool
    optional: bool
    has_default: bool
    kwarg_only: bool
    list_of_optional: bool = False


@dataclass(frozen=True)
class Schema:
    target: str
    args: tuple[SchemaArg, ...]
    returns: tuple[str, ...]
    """The kinds of the returns; ("Tensor[]",) for a variable number of tensors."""
    pure: bool
    """No argument is written to and the op is not random: dead copies may go, equal ones merge."""

    # A schema is built once per overload (`schema_of`) and read for every argument every pass
    # asks about (`AtenOp.arg`): what it derives from its arguments is derived once.

    @cached_property
    def positional(self) -> tuple[SchemaArg, ...]:
        return tuple(a for a in self.args if not a.kwarg_only)

    @cached_property
    def _by_name(self) -> dict[str, SchemaArg]:
        return {a.name: a for a in self.args}

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {a.name: i for i, a in enumerate(self.positional)}

    def arg(self, name: str) -> SchemaArg | None:
        return self._by_name.get(name)

    def position(self, name: str) -> int | None:
        """The index of the positional argument `name`, or None (keyword-only, or no such argument)."""
        return self._positions.get(name)

    @property
    def variadic_results(self) -> bool:
        return self.returns == ("Tensor[]",)


# Python callables torch.export leaves in graphs next to ATen ops (symbolic
# shape arithmetic, runtime asserts). They are named `py::<module>.<name>`.
PYTHON_TARGETS = {
    "operator": {
        "add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg", "pos",
        "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor", "not_", "abs",
    },
    "math": {"ceil", "floor", "sqrt", "trunc"},
    "torch": {"sym_float", "sym_int", "sym_max", "sym_min", "sym_not", "sym_ite", "sym_sum"},
    "torch.fx.experimental.symbolic_shapes": {"sym_and", "sym_or"},
    "torch._sym_node": set(),
}


def resolve_python_target(target: str):
    """The Python callable a `py::module.name` target names, or None."""
    import importlib

    module, _, name = target.removeprefix("py::").rpartition(".")
    if name not in PYTHON_TARGETS.get(module, ()):
        return None
    return getattr(importlib.import_module(module), name, None)


def resolve_overload(target: str):
    """The `torch.ops` overload that `target` names (`conv2d.default`, `ns::op.overload`)."""
    import torch

    namespace, sep, rest = target.partition("::")
    if not sep:
        namespace, rest = "aten", target
    op_name, _, overload = rest.rpartition(".")
    if not op_name:
        return None
    if namespace == "quantized_decomposed":
        import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers the namespace)
    elif namespace == "qir":
        import qir.torch_ops  # noqa: F401  (qir's own operators: registers the namespace)
    try:
        packet = getattr(getattr(torch.ops, namespace), op_name)
        return getattr(packet, overload)
    except (AttributeError, RuntimeError):
        return None


_RANDOM_OPS = {"dropout", "native_dropout", "bernoulli", "rand", "randn", "randint", "rand_like",
               "randn_like", "randint_like", "randperm", "normal", "uniform", "multinomial",
               "feature_dropout", "alpha_dropout", "feature_alpha_dropout", "rrelu", "empty",
               "empty_like", "empty_strided", "new_empty", "new_empty_strided"}


def _arg_kind(type_) -> tuple[str, bool, bool, bool]:
    """(base kind, is_list, optional, list_of_optional) of a torch JIT schema type."""
    import torch

    optional = False
    if isinstance(type_, torch.OptionalType):
        optional, type_ = True, type_.getElementType()
    if isinstance(type_, torch.ListType):
        element = type_.getElementType()
        list_of_optional = isinstance(element, torch.OptionalType)
        if list_of_optional:
            element = element.getElementType()
        return _base_kind(element), True, optional, list_of_optional
    return _base_kind(type_), False, optional, False


def _base_kind(type_) -> str:
    text = str(type_)
    return {"SymInt": "int", "SymFloat": "float", "SymBool": "bool", "number": "Scalar"}.get(text, text)


@cache
def schema_of(target: str) -> Schema | None:
    """The schema of an `aten.op` target, or None when torch has no such operator."""
    if target.startswith("py::"):
        return None
    overload = resolve_overload(target)
    if overload is None:
        return None
    schema = overload._schema
    args = []
    written = False
    for a in schema.arguments:
        kind, is_list, optional, list_of_optional = _arg_kind(a.real_type)
        args.append(SchemaArg(a.name, kind, is_list, optional, a.has_default_value(),
                              a.kwarg_only, list_of_optional))
        written |= a.alias_info is not None and a.alias_info.is_write
    returns = []
    for r in schema.returns:
        kind, is_list, _, _ = _arg_kind(r.real_type)
        returns.append(kind + ("[]" if is_list else ""))
    base_name = schema.name.split("::")[-1]
    pure = not written and base_name not in _RANDOM_OPS and not schema.is_mutable
    return Schema(target, tuple(args), tuple(returns), pure)


# Ops whose schema does not say what they do besides computing a value: runtime checks
# (they raise), printing, and normalizations that update running statistics in training mode.
_CHECKS = {"_assert_tensor_metadata", "_assert_async", "_assert_scalar", "sym_constrain_range",
           "sym_constrain_range_for_size", "_functional_assert_async", "_functional_assert_scalar",
           "_functional_sym_constrain_range", "_functional_sym_constrain_range_for_size", "_print"}
_TRAINING_STATS = {"batch_norm", "native_batch_norm", "_batch_norm_impl_index", "cudnn_batch_norm",
                   "miopen_batch_norm", "instance_norm", "_native_batch_norm_legit"}


def is_pure(op: Operation) -> bool:
    """Whether `op` may be removed when unused or merged with an identical op."""
    if isinstance(op, AtenOp):
        if op.target.data.startswith("py::"):
            return op.target.data.removeprefix("py::") in _PURE_PYTHON
        schema = schema_of(op.target.data)
        if schema is None or not schema.pure or op.op_name in _CHECKS:
            return False
        if any(isinstance(a, TrainingModeAttr) for a in op.args.data):
            return False  # decided at run time: may train (batch statistics, random drops)
        if op.op_name in _TRAINING_STATS:
            return op.arg("training", op.arg("use_input_stats", False)) is False
        return True
    return isinstance(op, ParamOp)


_PURE_PYTHON = {f"{m}.{n}" for m, names in PYTHON_TARGETS.items() for n in names}


# --------------------------------------------------------------------------
# Argument values: printing, parsing and checking against the schema.
# --------------------------------------------------------------------------


def _print_value(printer: Printer, value: Attribute, operands: Sequence[SSAValue]) -> None:
    if isinstance(value, OperandAttr):
        printer.print_ssa_value(operands[value.index.data])
    elif isinstance(value, ArrayAttr):
        printer.print_string("[")
        printer.print_list(value.data, lambda v: _print_value(printer, v, operands))
        printer.print_string("]")
    elif isinstance(value, IntegerAttr) and value.type == i64:
        printer.print_int(value.value.data)
    elif isinstance(value, FloatAttr) and value.type == f64 and math.isfinite(value.value.data):
        text = repr(value.value.data)
        if "e" in text and "." not in text:
            text = text.replace("e", ".0e")
        printer.print_string(text)
    else:
        printer.print_attribute(value)


def _parse_value(parser: Parser, operands: list[UnresolvedOperand]) -> Attribute:
    operand = parser.parse_optional_unresolved_operand()
    if operand is not None:
        operands.append(operand)
        return OperandAttr(len(operands) - 1)
    if parser.parse_optional_punctuation("[") is not None:
        if parser.parse_optional_punctuation("]") is not None:
            return ArrayAttr([])
        items = parser.parse_comma_separated_list(
            parser.Delimiter.NONE, lambda: _parse_value(parser, operands)
        )
        parser.parse_punctuation("]")
        return ArrayAttr(items)
    value = parser.parse_attribute()
    # `none` parses as the builtin none *type*; arguments mean the attribute.
    return NoneAttr() if isinstance(value, NoneType) else value


def _walk_operand_refs(value: Attribute) -> Iterator[OperandAttr]:
    if isinstance(value, OperandAttr):
        yield value
    elif isinstance(value, ArrayAttr):
        for item in value.data:
            yield from _walk_operand_refs(item)


def _kind_accepts(kind: str, value: Attribute, operand_type: Attribute | None) -> bool:
    """Whether one (non-list) value fits a schema base kind."""
    if operand_type is not None:
        if kind == "Tensor":  # torch wraps a symbolic scalar passed for a tensor
            return isinstance(operand_type, TensorType | IntegerType | Float64Type)
        if kind in ("int", "Scalar", "bool", "float"):
            return isinstance(operand_type, IntegerType | Float64Type | Float32Type)
        return kind in ("Any", "t")
    if kind == "Tensor":  # a Python number passed for a tensor (`mul.Tensor(x, 5)`)
        return isinstance(value, IntegerAttr | FloatAttr)
    if kind == "int":
        return isinstance(value, IntegerAttr)
    if kind == "float":
        return isinstance(value, FloatAttr | IntegerAttr)
    if kind == "bool":
        return isinstance(value, IntegerAttr | TrainingModeAttr)
    if kind == "Scalar":
        return isinstance(value, FloatAttr | IntegerAttr)
    if kind == "str":
        return isinstance(value, StringAttr)
    if kind in ENUM_ATTRS:
        # torch accepts an int for a ScalarType/MemoryFormat/Layout (they are enums).
        return isinstance(value, ENUM_ATTRS[kind] | IntegerAttr)
    return True  # Generator, Storage, Any and friends: torch checks them at call time.


# --------------------------------------------------------------------------
# Operations.
# --------------------------------------------------------------------------


@cache
def _op_name(target: str) -> str:
    """`conv2d` for `conv2d.default`, `foo` for `ns::foo.bar`: every pass asks, for every op."""
    return target.split("::")[-1].rpartition(".")[0] or target


@irdl_op_definition
class AtenOp(IRDLOperation):
    """One call of a torch operator, checked against the operator's schema."""

    name = "aten.op"

    target = prop_def(StringAttr)
    args = prop_def(ArrayAttr)
    kwargs = opt_prop_def(DictionaryAttr)

    ins = var_operand_def()
    outs = var_result_def()

    PROVENANCE: ClassVar[tuple[str, ...]] = ("module", "module_type")

    def __init__(
        self,
        target: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None = None,
        result_types: Sequence[Attribute] = (),
        attributes: Mapping[str, Attribute] | None = None,
    ):
        """Build from Python-level arguments: SSA values become operands, the rest attributes.

        The op has one variadic operand list and one variadic result list, so IRDL's generic
        builder would only check and flatten them: the op is built directly, as
        `Operation.create` builds it (import and every rewrite build thousands)."""
        operands: list[SSAValue] = []
        arg_attrs = [to_attr(a, operands) for a in args]
        kw_attrs = {k: to_attr(v, operands) for k, v in (kwargs or {}).items()}
        Operation.__init__(
            self,
            operands=operands,
            result_types=result_types,
            properties={
                "target": StringAttr(target),
                "args": ArrayAttr(arg_attrs),
                **({"kwargs": DictionaryAttr(kw_attrs)} if kw_attrs else {}),
            },
            attributes={k: v for k, v in (attributes or {}).items() if v is not None},
        )

    # -- Python view of the arguments ------------------------------------

    @property
    def op_name(self) -> str:
        """The operator without overload: `conv2d` for `conv2d.default`."""
        return _op_name(self.target.data)

    @property
    def schema(self) -> Schema | None:
        return schema_of(self.target.data)

    def value(self, attr: Attribute) -> Any:
        """An argument attribute as Python: SSA values for operands, lists, ints, floats, ..."""
        return from_attr(attr, self.operands)

    def arg(self, name_or_index: str | int, default: Any = None) -> Any:
        """An argument by schema name or position, as `value()` gives it; `default` if absent."""
        index = name_or_index
        if isinstance(name_or_index, str):
            kwargs = self.kwargs
            if kwargs is not None and name_or_index in kwargs.data:
                return self.value(kwargs.data[name_or_index])
            schema = self.schema
            index = schema.position(name_or_index) if schema is not None else None
            if index is None:
                return default
        assert isinstance(index, int)
        if index < len(self.args.data):
            return self.value(self.args.data[index])
        return default

    # -- text form --------------------------------------------------------

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_string_literal(self.target.data)
        printer.print_string("(")
        items: list[tuple[str | None, Attribute]] = [(None, a) for a in self.args.data]
        if self.kwargs is not None:
            items += list(self.kwargs.data.items())

        def print_item(item: tuple[str | None, Attribute]) -> None:
            key, value = item
            if key is not None:
                printer.print_identifier_or_string_literal(key)
                printer.print_string(" = ")
            _print_value(printer, value, self.operands)

        printer.print_list(items, print_item)
        printer.print_string(")")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_function_type(self.operand_types, self.result_types)

    @classmethod
    def parse(cls, parser: Parser) -> AtenOp:
        target = parser.parse_str_literal("operator name")
        operands: list[UnresolvedOperand] = []
        args: list[Attribute] = []
        kwargs: dict[str, Attribute] = {}

        def parse_item() -> None:
            keyword = _parse_optional_keyword(parser)
            if keyword is not None:
                kwargs[keyword] = _parse_value(parser, operands)
            elif kwargs:
                parser.raise_error("positional argument after keyword argument")
            else:
                args.append(_parse_value(parser, operands))

        parser.parse_comma_separated_list(parser.Delimiter.PAREN, parse_item)
        attributes = parser.parse_optional_attr_dict()
        for key in ("qin", "qout"):  # a `none` entry (left float) parses as the none type
            entries = attributes.get(key)
            if isinstance(entries, ArrayAttr):
                attributes[key] = ArrayAttr([NoneAttr() if isinstance(e, NoneType) else e for e in entries.data])
        parser.parse_punctuation(":")
        pos = parser.pos
        func_type = parser.parse_function_type()
        if len(func_type.inputs.data) != len(operands):
            parser.raise_error(
                f"{len(operands)} operands but the type lists {len(func_type.inputs.data)}",
                pos, parser.pos,
            )
        resolved = parser.resolve_operands(operands, func_type.inputs.data, pos)
        op = cls.create(
            operands=resolved,
            result_types=list(func_type.outputs.data),
            properties={
                "target": StringAttr(target),
                "args": ArrayAttr(args),
                **({"kwargs": DictionaryAttr(kwargs)} if kwargs else {}),
            },
            attributes=attributes,
        )
        return op

    # -- verification -----------------------------------------------------

    def verify_(self) -> None:
        self.verify_schema()

    def verify_schema(self) -> None:
        """The checks specific to `aten.op`: operand references, then the operator's schema."""
        refs = [r.index.data for a in self.args.data for r in _walk_operand_refs(a)]
        if self.kwargs is not None:
            refs += [r.index.data for a in self.kwargs.data.values() for r in _walk_operand_refs(a)]
        if sorted(refs) != list(range(len(self.operands))):
            raise VerifyException(
                f"aten.op {self.target.data!r}: arguments reference operands {sorted(refs)}, "
                f"but the op has {len(self.operands)}"
            )
        target = self.target.data
        if target.startswith("py::"):
            if resolve_python_target(target) is None:
                raise VerifyException(f"aten.op {target!r}: not a known Python operator")
            return
        schema = schema_of(target)
        if schema is None:
            raise VerifyException(f"aten.op {target!r}: torch has no such operator overload")
        self._verify_args(schema, self.operands)  # `operands` builds a tuple: once per op
        self._verify_results(schema)
        self._verify_annotations()

    def _verify_annotations(self) -> None:
        """A quantizer's `qin`/`qout` lists (see the obs dialect) have one entry per
        operand/result, each `none` or a spec that fits the value it annotates: the
        passes index operands, results and shapes with what the specs say."""
        if "qin" not in self.attributes and "qout" not in self.attributes:
            return  # most ops, at every verification
        from qir.dialects.obs import AnnotationSpec, DerivedSpecAttr, SharedSpecAttr, verify_spec_fits

        for key, values in (("qin", self.operands), ("qout", self.results)):
            entries = self.attributes.get(key)
            if entries is None:
                continue
            if not isinstance(entries, ArrayAttr) or len(entries.data) != len(values):
                raise VerifyException(
                    f"aten.op {self.target.data!r}: {key} must list {len(values)} entries, got {entries}"
                )
            for index, (spec, value) in enumerate(zip(entries.data, values)):
                where = f"aten.op {self.target.data!r}: {key}[{index}]"
                if isinstance(spec, NoneAttr):
                    continue
                if not isinstance(spec, AnnotationSpec):
                    raise VerifyException(f"{where} must be none or an #obs spec, got {spec}")
                if isinstance(spec, SharedSpecAttr):
                    count = len(self.operands) if spec.kind.data == "operand" else len(self.results)
                    if spec.index.data >= count:
                        raise VerifyException(f"{where} shares with {spec.kind.data} {spec.index.data}, "
                                              f"the op has {count}")
                if isinstance(spec, DerivedSpecAttr) and max(spec.sources) >= len(self.operands):
                    raise VerifyException(f"{where} is derived from operands {list(spec.sources)}, "
                                          f"the op has {len(self.operands)}")
                try:
                    verify_spec_fits(spec, value.type)
                except VerifyException as err:
                    raise VerifyException(f"{where}: {err}") from None

    def _verify_args(self, schema: Schema, operands: Sequence[SSAValue]) -> None:
        positional = schema.positional
        if len(self.args.data) > len(positional):
            raise VerifyException(
                f"aten.op {schema.target!r}: {len(self.args.data)} positional arguments, "
                f"the schema takes at most {len(positional)}"
            )
        given: dict[str, Attribute] = {a.name: v for a, v in zip(positional, self.args.data)}
        for key, value in (self.kwargs.data if self.kwargs else {}).items():
            if schema.arg(key) is None:
                raise VerifyException(f"aten.op {schema.target!r}: no argument named {key!r}")
            if key in given:
                raise VerifyException(f"aten.op {schema.target!r}: argument {key!r} given twice")
            given[key] = value
        for arg in schema.args:
            if arg.name not in given:
                if not arg.has_default and not arg.optional:
                    raise VerifyException(
                        f"aten.op {schema.target!r}: missing argument {arg.name!r}"
                    )
                continue
            if not _accepts(arg, given[arg.name], operands):
                raise VerifyException(
                    f"aten.op {schema.target!r}: argument {arg.name!r} expects "
                    f"{arg.kind}{'[]' if arg.is_list else ''}{'?' if arg.optional else ''}, "
                    f"got {_describe(given[arg.name], operands)}"
                )

    def _verify_results(self, schema: Schema) -> None:
        if schema.variadic_results:
            return
        if len(self.results) != len(schema.returns):
            raise VerifyException(
                f"aten.op {schema.target!r}: {len(self.results)} results, the schema returns "
                f"{len(schema.returns)}"
            )


def _accepts(arg: SchemaArg, value: Attribute, operands: Sequence[SSAValue]) -> bool:
    if isinstance(value, NoneAttr):
        return arg.optional or arg.has_default
    if arg.is_list:
        if not isinstance(value, ArrayAttr):
            # `int[2] stride=1` style: one int stands for the whole list.
            return arg.kind == "int" and isinstance(value, IntegerAttr)
        return all(
            (arg.list_of_optional and isinstance(v, NoneAttr)) or _accepts_one(arg.kind, v, operands)
            for v in value.data
        )
    return _accepts_one(arg.kind, value, operands)


def _accepts_one(kind: str, value: Attribute, operands: Sequence[SSAValue]) -> bool:
    operand_type = operands[value.index.data].type if isinstance(value, OperandAttr) else None
    return _kind_accepts(kind, value, operand_type)


def _parse_optional_keyword(parser: Parser) -> str | None:
    """`name =` at the start of a keyword argument (a bare identifier followed by `=`)."""
    from xdsl.utils.mlir_lexer import MLIRTokenKind

    tok = parser._current_token
    if tok.kind != MLIRTokenKind.BARE_IDENT:
        return None
    if tok.text in ("true", "false", "none", "unit", "dense", "array", "affine_map",
                    "affine_set", "loc", "dense_resource", "sparse", "opaque", "distinct"):
        return None
    name = parser.parse_identifier()
    parser.parse_punctuation("=")
    return name


def _describe(value: Attribute, operands: Sequence[SSAValue]) -> str:
    if isinstance(value, OperandAttr):
        return f"an operand of type {operands[value.index.data].type}"
    return str(value)


@irdl_op_definition
class ParamOp(IRDLOperation):
    """A weight, buffer or constant of the model, named in the program's parameter store.

        %w = aten.param parameter "conv.weight" : tensor<4x3x3x3xf32>
        %c = aten.param constant "table" = dense<[1.0, 2.0]> : tensor<2xf32>

    With an inline `dense<...>` value the IR is self-contained (small tests);
    otherwise the store holds the tensor under `name`.
    """

    name = "aten.param"

    KINDS: ClassVar[tuple[str, ...]] = ("parameter", "buffer", "constant")

    sym = prop_def(StringAttr, prop_name="name")
    kind = prop_def(StringAttr)
    value = opt_prop_def(DenseIntOrFPElementsAttr)
    result = result_def(TensorType)

    def __init__(self, name: str, type_: Attribute, kind: str = "parameter",
                 value: DenseIntOrFPElementsAttr | None = None,
                 attributes: Mapping[str, Attribute] | None = None):
        # One result and no operand: built directly, as `AtenOp` is (one op per weight).
        Operation.__init__(
            self,
            result_types=[type_],
            properties={"name": StringAttr(name), "kind": StringAttr(kind),
                        **({"value": value} if value is not None else {})},
            attributes={k: v for k, v in (attributes or {}).items() if v is not None},
        )

    @property
    def param_name(self) -> str:
        return self.sym.data

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.kind.data} ")
        printer.print_string_literal(self.sym.data)
        if self.value is not None:
            printer.print_string(" = ")
            printer.print_attribute(self.value)
        printer.print_op_attributes(self.attributes)
        if self.value is None:
            printer.print_string(" : ")
            printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> ParamOp:
        pos = parser.pos
        kind = parser.parse_identifier()
        if kind not in cls.KINDS:
            parser.raise_error(f"expected one of {', '.join(cls.KINDS)}", pos, parser.pos)
        name = parser.parse_str_literal("parameter name")
        value = None
        if parser.parse_optional_punctuation("=") is not None:
            value = parser.parse_attribute()
            if not isinstance(value, DenseIntOrFPElementsAttr):
                parser.raise_error("expected a dense<...> value")
            type_ = value.get_type()
            attributes = parser.parse_optional_attr_dict()
        else:
            attributes = parser.parse_optional_attr_dict()
            parser.parse_punctuation(":")
            type_ = parser.parse_type()
        return cls(name, type_, kind, value, attributes)

    def verify_(self) -> None:
        if self.kind.data not in self.KINDS:
            raise VerifyException(f"aten.param: unknown kind {self.kind.data!r}")
        if self.value is not None and self.value.get_type() != self.result.type:
            raise VerifyException("aten.param: value type differs from result type")


@irdl_op_definition
class ParamUpdateOp(IRDLOperation):
    """Writes a new value into a buffer: the buffer mutations of a training-mode export.

        aten.param_update "bn.running_mean", %m : tensor<4xf32>
    """

    name = "aten.param_update"

    sym = prop_def(StringAttr, prop_name="name")
    new_value = operand_def(TensorType)

    assembly_format = "$name `,` $new_value attr-dict `:` type($new_value)"

    def __init__(self, name: str, value: SSAValue | Operation):
        super().__init__(operands=[value], properties={"name": StringAttr(name)})


# --------------------------------------------------------------------------
# Python values <-> argument attributes.
# --------------------------------------------------------------------------


def to_attr(value: Any, operands: list[SSAValue]) -> Attribute:
    """A Python argument as an attribute; SSA values are appended to `operands`."""
    if isinstance(value, SSAValue | Operation):
        operands.append(SSAValue.get(value))
        return _operand_attr(len(operands) - 1)
    if isinstance(value, Attribute):
        return value
    if value is None:
        return _NONE
    if isinstance(value, bool):
        return _bool_attr(value)
    if isinstance(value, int):
        return _int_attr(value)
    if isinstance(value, float):
        return _float_attr(value, math.copysign(1.0, value))
    if isinstance(value, str):
        return StringAttr(value)
    if isinstance(value, list | tuple):
        return ArrayAttr([to_attr(v, operands) for v in value])
    raise TypeError(f"cannot represent {value!r} as an aten argument")


_NONE = NoneAttr()


@cache
def _operand_attr(index: int) -> OperandAttr:
    """Attributes are immutable values: every op's first operand can be the same `#aten.operand<0>`."""
    return OperandAttr(index)


@cache
def _bool_attr(value: bool) -> IntegerAttr:
    return IntegerAttr(int(value), i1)


@cache
def _int_attr(value: int) -> IntegerAttr:
    return IntegerAttr(value, i64)


@cache
def _float_attr(value: float, sign: float) -> FloatAttr:
    """Cached by sign too: the cache takes -0.0 for 0.0 (they are equal), the program may not
    (`x + -0.0` keeps a -0.0 in `x`, `x + 0.0` does not)."""
    return FloatAttr(value, f64)


def from_attr(attr: Attribute, operands: Sequence[SSAValue]) -> Any:
    """The Python view of an argument attribute (the inverse of `to_attr`)."""
    if isinstance(attr, OperandAttr):
        return operands[attr.index.data]
    if isinstance(attr, ArrayAttr):
        return [from_attr(a, operands) for a in attr.data]
    if isinstance(attr, NoneAttr):
        return None
    if isinstance(attr, IntegerAttr):
        v = attr.value.data
        return bool(v) if attr.type == i1 else v
    if isinstance(attr, FloatAttr):
        return attr.value.data
    if isinstance(attr, StringAttr):
        return attr.data
    return attr


def operand_refs(values: Iterable[Attribute]) -> Iterator[OperandAttr]:
    for value in values:
        yield from _walk_operand_refs(value)


Aten = Dialect(
    "aten",
    [AtenOp, ParamOp, ParamUpdateOp],
    [DTypeAttr, MemoryFormatAttr, LayoutAttr, DeviceAttr, OperandAttr, TrainingModeAttr],
)
