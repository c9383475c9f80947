"""The `custom` dialect: a submodule qir keeps as it is, called as one opaque op.

A user names submodules that qir does not look into (`qir.CustomModules`): code that
`torch.export` cannot capture (data-dependent Python control flow, calls into other
libraries), kept in float, or a module with an observed and a quantized form of the
user's own (FX mode's custom modules). Each call of such a module is one `custom.call`:

    %t = custom.call "tokenizer"(%x) : (tensor<2x16xf32>) -> tensor<2x16xf32>
    %a:2 = custom.call custom "block.attn"(%t, 2, none) {in_spec = "((*, *, *), {})", out_spec = "(*, *)"}
             : (tensor<2x16xf32>) -> (tensor<2x16xf32>, tensor<2xi64>)
    %a = custom.call quantized "block.attn"(%t_dq) as (tensor<2x16x!quant.uniform<u8:f32, 0.02:3>>)
             -> tensor<2x16x!quant.uniform<u8:f32, 0.05:128>> : (tensor<2x16xf32>) -> tensor<2x16xf32>

The string names the module (its path in the model; the program keeps the module object
under that name: `Program.modules`). The keyword before it is the form that is called:

* none (`float`): a module kept as it is, in float, at every stage;
* `custom`: the float form of a module with a quantized replacement, not yet observed;
* `observed`: its observed form (`insert-observers` observed its boundary);
* `quantized`: its quantized form (`convert`); `as` gives the types the module sees, with
  the boundary's quantization parameters: it is called with torch quantized tensors of
  those parameters, and its quantized outputs are dequantized. The operands and results
  themselves stay float, so every pass and every backend treats the op as any float op
  between a dequantize and a quantize.

The arguments are the leaves of the module call's `(args, kwargs)`: tensors as operands,
Python scalars, strings and `none` as they are; `in_spec` is the pytree structure they
make (default: positional arguments only) and `out_spec` the structure of the results
(default: one tensor, or a tuple of them), in `qir.pytree_text`'s short form. The op has
unknown side effects: no pass removes, merges or moves it past another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from xdsl.dialects.builtin import (
    ArrayAttr,
    FloatAttr,
    FunctionType,
    IntegerAttr,
    NoneAttr,
    NoneType,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute, Dialect, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    opt_prop_def,
    prop_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import Parser, UnresolvedOperand
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.mlir_lexer import MLIRTokenKind

from qir.dialects.aten import OperandAttr, _parse_value, _print_value, _walk_operand_refs, to_attr

FORMS = ("float", "custom", "observed", "quantized")


@irdl_op_definition
class CallOp(IRDLOperation):
    """One call of a module the program keeps as it is (see the module docstring)."""

    name = "custom.call"

    callee = prop_def(StringAttr)
    form = prop_def(StringAttr)
    args = prop_def(ArrayAttr)
    in_spec = opt_prop_def(StringAttr)
    out_spec = opt_prop_def(StringAttr)
    signature = opt_prop_def(FunctionType)

    ins = var_operand_def()
    outs = var_result_def()

    SPECS: ClassVar[tuple[str, ...]] = ("in_spec", "out_spec")

    def __init__(self, callee: str, args: Sequence[Any], result_types: Sequence[Attribute], *,
                 form: str = "float", in_spec: str | None = None, out_spec: str | None = None,
                 signature: FunctionType | None = None, attributes: Mapping[str, Attribute] | None = None):
        """`args`: the call's leaves, SSA values for tensors, Python scalars / strings / None."""
        operands: list[SSAValue] = []
        leaves = [to_attr(a, operands) for a in args]
        properties: dict[str, Attribute] = {"callee": StringAttr(callee), "form": StringAttr(form),
                                            "args": ArrayAttr(leaves)}
        for key, value in (("in_spec", in_spec), ("out_spec", out_spec)):
            if value is not None:
                properties[key] = StringAttr(value)
        if signature is not None:
            properties["signature"] = signature
        super().__init__(operands=[operands], result_types=[list(result_types)], properties=properties,
                         attributes=dict(attributes or {}))

    @property
    def module_name(self) -> str:
        return self.callee.data

    @property
    def form_name(self) -> str:
        return self.form.data

    def set_form(self, form: str, signature: FunctionType | None = None) -> None:
        self.properties["form"] = StringAttr(form)
        if signature is None:
            self.properties.pop("signature", None)
        else:
            self.properties["signature"] = signature

    @property
    def replaceable(self) -> bool:
        """Whether the module has observed and quantized forms (not kept float for good)."""
        return self.form.data != "float"

    # -- text form --------------------------------------------------------

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        if self.form.data != "float":
            printer.print_string(self.form.data + " ")
        printer.print_string_literal(self.callee.data)
        printer.print_string("(")
        printer.print_list(self.args.data, lambda v: _print_value(printer, v, self.operands))
        printer.print_string(")")
        entries = {k: self.properties[k] for k in self.SPECS if k in self.properties}
        entries.update(self.attributes)
        if entries:
            printer.print_string(" ")
            printer.print_attr_dict(entries)
        if self.signature is not None:
            printer.print_string(" as ")
            printer.print_function_type(self.signature.inputs.data, self.signature.outputs.data)
        printer.print_string(" : ")
        printer.print_function_type(self.operand_types, self.result_types)

    @classmethod
    def parse(cls, parser: Parser) -> CallOp:
        start = parser.pos
        form = "float"
        if parser._current_token.kind == MLIRTokenKind.BARE_IDENT:
            form = parser.parse_identifier()
            if form not in FORMS[1:]:
                parser.raise_error(f"expected a module name or one of {', '.join(FORMS[1:])}", start, parser.pos)
        callee = parser.parse_str_literal("module name")
        operands: list[UnresolvedOperand] = []
        args = parser.parse_comma_separated_list(parser.Delimiter.PAREN, lambda: _parse_value(parser, operands))
        entries = parser.parse_optional_attr_dict()
        properties: dict[str, Attribute] = {"callee": StringAttr(callee), "form": StringAttr(form),
                                            "args": ArrayAttr(args)}
        for key in cls.SPECS:
            if key in entries:
                properties[key] = entries.pop(key)
        for key in ("qin", "qout"):  # a `none` entry (left float) parses as the none type
            if isinstance(entries.get(key), ArrayAttr):
                entries[key] = ArrayAttr([NoneAttr() if isinstance(e, NoneType) else e for e in entries[key].data])
        if parser.parse_optional_keyword("as") is not None:
            properties["signature"] = parser.parse_function_type()
        parser.parse_punctuation(":")
        pos = parser.pos
        types = parser.parse_function_type()
        if len(types.inputs.data) != len(operands):
            parser.raise_error(f"{len(operands)} operands but the type lists {len(types.inputs.data)}",
                               pos, parser.pos)
        resolved = parser.resolve_operands(operands, types.inputs.data, pos)
        return cls.create(operands=resolved, result_types=list(types.outputs.data), properties=properties,
                          attributes=entries)

    # -- verification -----------------------------------------------------

    def verify_(self) -> None:
        where = f"custom.call {self.callee.data!r}"
        if self.form.data not in FORMS:
            raise VerifyException(f"{where}: unknown form {self.form.data!r} (forms: {', '.join(FORMS)})")
        refs = []
        for leaf in self.args.data:
            if not isinstance(leaf, OperandAttr | IntegerAttr | FloatAttr | StringAttr | NoneAttr | NoneType):
                raise VerifyException(f"{where}: an argument is a tensor, a number, a string or none, got {leaf}")
            refs += [r.index.data for r in _walk_operand_refs(leaf)]
        if refs != list(range(len(self.operands))):
            raise VerifyException(f"{where}: the arguments reference operands {refs}, but the op has "
                                  f"{len(self.operands)} (each once, in order)")
        self._verify_spec("in_spec", len(self.args.data), "arguments")
        self._verify_spec("out_spec", len(self.results), "results")
        if self.out_spec is None and not self.results:
            raise VerifyException(f"{where}: a call without results needs an out_spec")
        self._verify_signature(where)
        self._verify_annotations(where)

    def _verify_spec(self, key: str, count: int, what: str) -> None:
        attr = self.properties.get(key)
        if attr is None:
            return
        from qir.pytree_text import spec_from_text

        try:
            leaves = spec_from_text(attr.data).num_leaves
        except Exception as err:
            raise VerifyException(f"custom.call {self.callee.data!r}: {key} {attr.data!r} is not a pytree "
                                  f"spec: {err}") from None
        if leaves != count:
            raise VerifyException(f"custom.call {self.callee.data!r}: {key} {attr.data!r} has {leaves} "
                                  f"leaves for {count} {what}")

    def _verify_signature(self, where: str) -> None:
        from qir.dialects.quant import UniformQuantizedType

        signature = self.signature
        if (signature is not None) != (self.form.data == "quantized"):
            raise VerifyException(f"{where}: the quantized form, and only it, gives the types the module sees (`as`)")
        if signature is None:
            return
        for what, seen, values in (("input", signature.inputs.data, self.operands),
                                   ("output", signature.outputs.data, self.results)):
            if len(seen) != len(values):
                raise VerifyException(f"{where}: `as` lists {len(seen)} {what}s, the op has {len(values)}")
            for index, (type_, value) in enumerate(zip(seen, values)):
                if type_ == value.type:
                    continue
                element = getattr(type_, "element_type", None)
                if not (isinstance(type_, TensorType) and isinstance(value.type, TensorType)
                        and isinstance(element, UniformQuantizedType) and element.expressed_type == value.type.element_type
                        and type_.get_shape() == value.type.get_shape()):
                    raise VerifyException(f"{where}: {what} {index} is {value.type}; the module can see it as "
                                          f"itself or quantized per tensor with the same shape, not as {type_}")

    def _verify_annotations(self, where: str) -> None:
        from qir.dialects.obs import AnnotationSpec, verify_spec_fits

        for key, values in (("qin", self.operands), ("qout", self.results)):
            entries = self.attributes.get(key)
            if entries is None:
                continue
            if not isinstance(entries, ArrayAttr) or len(entries.data) != len(values):
                raise VerifyException(f"{where}: {key} must list {len(values)} entries, got {entries}")
            for index, (spec, value) in enumerate(zip(entries.data, values)):
                if isinstance(spec, NoneAttr):
                    continue
                if not isinstance(spec, AnnotationSpec):
                    raise VerifyException(f"{where}: {key}[{index}] must be none or an #obs spec, got {spec}")
                try:
                    verify_spec_fits(spec, value.type)
                except VerifyException as err:
                    raise VerifyException(f"{where}: {key}[{index}]: {err}") from None


Custom = Dialect("custom", [CallOp], [])
