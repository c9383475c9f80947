"""The one textual form shared by `ref` ops and every backend's kernel ops.

A quantized kernel is a call: some tensors in, one or more tensors out, and a
few attributes. qir writes every such op the way `aten.op` is written, so that
IR at the `reference` and `lowered` stages reads like the float IR before it,
and so that the lowering rule language (`qir.lowering.rules`) can match any of
them with one syntax:

    %y = ref.conv(%x, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>,
           dilation = array<i64: 1, 1>, groups = 1 : i64, post = "relu"}
           : (tensor<1x3x8x8x!quant.uniform<u8:f32, 0.02:128>>, tensor<4x3x3x3x!quant.uniform<i8:f32:0, {...}>>,
              tensor<4xf32>) -> tensor<1x4x8x8x!quant.uniform<u8:f32, 0.01>>

Operands are the IRDL operands of the op in declaration order; entries of the
attribute dictionary that the op declares as properties become properties,
the rest (provenance such as `module`) stay discardable attributes. A backend
author subclasses `KernelOp`, declares operands, results and properties with
IRDL as usual, and gets the printer, the parser and the generic verification.
"""

from __future__ import annotations

from xdsl.dialects.builtin import FunctionType
from xdsl.ir import Attribute
from xdsl.irdl import IRDLOperation, traits_def
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException


class KernelOp(IRDLOperation):
    """Base of ops printed `name(%a, %b) {attrs} : (A, B) -> R`; subclasses declare the fields.

    Kernel ops are pure unless a subclass says otherwise (`traits`), so dead ones are erased
    by `canonicalize` and identical ones merged by `cse`."""

    traits = traits_def(Pure())

    def print(self, printer: Printer) -> None:
        printer.print_string("(")
        printer.print_list(self.operands, printer.print_operand)
        printer.print_string(")")
        entries = {**self.properties, **self.attributes}
        if entries:
            printer.print_string(" ")
            printer.print_attr_dict(entries)
        printer.print_string(" : ")
        printer.print_attribute(FunctionType.from_lists([o.type for o in self.operands],
                                                        [r.type for r in self.results]))

    @classmethod
    def parse(cls, parser: Parser) -> "KernelOp":
        start = parser.pos
        operands = parser.parse_comma_separated_list(parser.Delimiter.PAREN, parser.parse_unresolved_operand)
        entries = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        type_pos = parser.pos
        signature = parser.parse_function_type()
        if len(signature.inputs.data) != len(operands):
            parser.raise_error(f"{len(operands)} operands but the type lists {len(signature.inputs.data)}",
                               type_pos, parser.pos)
        values = [parser.resolve_operand(o, t) for o, t in zip(operands, signature.inputs.data)]
        declared = cls.get_irdl_definition().properties
        properties = {k: v for k, v in entries.items() if k in declared}
        attributes = {k: v for k, v in entries.items() if k not in declared}
        try:
            return cls.create(operands=values, result_types=list(signature.outputs.data),
                              properties=properties, attributes=attributes)
        except (ValueError, VerifyException) as err:
            parser.raise_error(f"{cls.name}: {err}", start, parser.pos)

    def attribute_or_property(self, name: str) -> Attribute | None:
        """An entry of the printed attribute dictionary, wherever it is stored."""
        return self.properties.get(name, self.attributes.get(name))
