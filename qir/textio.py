"""Reading IR text with errors located as `file:line:col: error: ...`.

xDSL reports parse errors with their span but verifies ops after parsing,
when their position in the text is gone. This parser remembers where each
op started, then verifies op by op, so that an op that does not verify is
reported at its own line, the way mlir-opt does it.

It also closes the holes a fuzzer found in xDSL 0.74's parser, where
malformed text raised an assertion, a `ValueError` or an `OverflowError`
instead of a parse error, and where text the printer writes did not read
back: a hexadecimal literal in a float `dense<...>` or `array<f64: ...>` is
the element's bit pattern, as in MLIR (the printer writes NaN, ±inf and
floats such as 123456789.0 that way), not an integer to convert.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from xdsl.context import Context
from xdsl.dialects.builtin import AnyFloat, ComplexType, DenseArrayBase, FloatAttr, IntegerType, ModuleOp
from xdsl.ir import Attribute, Operation
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError, VerifyException
from xdsl.utils.lexer import Span
from xdsl.utils.mlir_lexer import MLIRLexer, MLIRTokenKind

from qir.errors import ParseFailure
from qir.gc_pause import paused_gc

# xDSL 0.74 lexes string literals with `"(?:[^"\\\n]+|\\...)*"`: a nested quantifier that
# backtracks exponentially on an unterminated string (`aten.op "relu.default(%x) : ...` hangs
# for minutes). The same language, unrolled so that every character is consumed one way only:
MLIRLexer._unescaped_characters_regex = re.compile(
    r'"[^"\\\n\v\f]*(?:\\(?:["nt\\]|[0-9A-Fa-f]{2})[^"\\\n\v\f]*)*"'
)


MAX_DENSE_BYTES = 1 << 28
"""The largest inline `dense<...>` literal, in bytes of its elements (xDSL holds a Python
list of them while building it: several times more)."""


class LocatingParser(Parser):
    """An xDSL parser that records the span where each op begins."""

    def __init__(self, ctx: Context, text: str, name: str = "<stdin>"):
        super().__init__(ctx, text, name)
        self.op_spans: dict[Operation, Span] = {}
        self.first_uses: dict[str, Span] = {}

    def parse_operation(self) -> Operation:
        start = self._current_token.span
        try:
            op = super().parse_operation()
        except VerifyException as err:  # an op or type that checks itself while being built
            raise ParseError(start, str(err)) from None
        self.op_spans[op] = start
        return op

    def resolve_operand(self, operand, type):
        if operand.operand_name not in self.ssa_values:  # a forward reference: remember where
            self.first_uses.setdefault(operand.operand_name, operand.span)
        return super().resolve_operand(operand, type)

    def undeclared_use(self) -> Span | None:
        """Where the first value that is used but never defined is used."""
        spans = [self.first_uses[n] for n in self.forward_ssa_references if n in self.first_uses]
        return min(spans, key=lambda s: s.start) if spans else None

    # -- xDSL's parser, made total on malformed input ----------------------------------

    def _consume_token(self, expected_kind=None):
        """xDSL asserts the kind of a token it consumes where it took the kind for granted
        (`(1.0, 2.0]` in a dense literal): here a wrong token is a parse error."""
        if expected_kind is not None and self._current_token.kind != expected_kind:
            spelling = expected_kind.value  # punctuation; other kinds hold a sentinel object
            self.raise_error(f"Expected '{spelling}'" if isinstance(spelling, str)
                             else f"Expected {expected_kind.name.lower().replace('_', ' ')}")
        return super()._consume_token(expected_kind)

    def _parse_block(self):
        """In a region, what is neither an op nor `}` is taken for a block label; xDSL's
        message for a missing label is the bare context " in block definition"."""
        if self._current_token.kind != MLIRTokenKind.CARET_IDENT:
            self.raise_error("expected an operation, a block label (^bb0:) or '}' closing the region")
        return super()._parse_block()

    def parse_optional_attribute(self) -> Attribute | None:
        return self._value_errors_located(super().parse_optional_attribute)

    def parse_optional_type(self):
        return self._value_errors_located(super().parse_optional_type)

    def _value_errors_located(self, parse):
        """xDSL builds attributes from the values it read and lets their constructors
        object with a ValueError, an OverflowError or a VerifyException
        (`dense<300> : tensor<i8>`, `1.0e39 : f32`, `300 : i8`): those are parse errors at
        the attribute's text."""
        start = self._current_token.span.start
        try:
            return parse()
        except OverflowError:
            self.raise_error("number out of range for its type", start, max(self.pos, start + 1))
        except (ValueError, AssertionError, VerifyException) as err:
            self.raise_error(str(err) or "malformed attribute", start, max(self.pos, start + 1))

    def parse_optional_builtin_int_or_float_attr(self):
        """xDSL reads `-0x3F800000 : f32` as the integer -1065353216 converted to float; in
        MLIR a hexadecimal float literal is the bit pattern, sign bit included, and a minus
        before it is an error."""
        start = self._current_token.span
        signed_hex = start.text == "-" and start.input.content[start.end:].lstrip()[:2] in ("0x", "0X")
        attr = super().parse_optional_builtin_int_or_float_attr()
        if signed_hex and isinstance(attr, FloatAttr):
            self.raise_error("a hexadecimal float literal has no sign", start.start, self.pos)
        return attr

    def _parse_dense_literal_type(self):
        """xDSL materializes a splat `dense<1.0>` element by element, so a small text can ask
        for gigabytes (`tensor<1000000000xf32>`) or more than an index can count: refused here,
        before any allocation, as a type no inline literal can have."""
        start = self.pos
        type_ = super()._parse_dense_literal_type()
        count = math.prod(type_.get_shape())
        if count * type_.element_type.compile_time_size > MAX_DENSE_BYTES:
            self.raise_error(f"a dense literal of {count} elements is too large to hold inline (at most "
                             f"{MAX_DENSE_BYTES >> 20} MiB; tensors live in the .safetensors file)", start, self.pos)
        return type_

    def _parse_tensor_literal_element(self):
        element = super()._parse_tensor_literal_element()
        return _Element(element.is_negative, element.value, element.span)

    def _parse_builtin_densearray_attr(self) -> DenseArrayBase | None:
        """xDSL's `array<...>`, where a float element may be a hexadecimal bit pattern."""
        self.parse_characters("<", " in dense array")
        pos = self.pos
        element_type = self.parse_attribute()
        if not isinstance(element_type, IntegerType | AnyFloat):
            self.raise_error("dense array element type must be an integer or floating point type",
                             pos, self.pos)
        if self.parse_optional_punctuation(">"):
            return DenseArrayBase.from_list(element_type, [])
        self.parse_characters(":", " in dense array")
        if isinstance(element_type, IntegerType):
            values = self.parse_comma_separated_list(
                self.Delimiter.NONE, lambda: self._parse_typed_integer(element_type, allow_boolean=True))
        else:
            def parse_float():
                if self._current_token.kind == MLIRTokenKind.INTEGER_LIT and _is_hex(self._current_token.span):
                    token = self._consume_token()
                    return _float_from_bits(self, token.span, token.kind.get_int_value(token.span),
                                            element_type)
                start = self.pos
                value = self.parse_float()
                return _float_in_range(self, Span(start, self.pos, self.lexer.input), value, element_type)

            values = self.parse_comma_separated_list(self.Delimiter.NONE, parse_float)
        self.parse_characters(">", " in dense array")
        return DenseArrayBase.from_list(element_type, values)


def _is_hex(span: Span) -> bool:
    return span.text.lstrip("-")[:2] in ("0x", "0X")


def _float_from_bits(parser: Parser, span: Span, bits: int, type_: AnyFloat) -> float:
    """The float whose bit pattern is `bits`, as MLIR reads a hexadecimal float literal."""
    width = type_.compile_time_size
    if span.text.startswith("-"):
        parser.raise_error("a hexadecimal float literal has no sign", span)
    if bits >= 1 << (8 * width):
        parser.raise_error(f"hexadecimal float literal does not fit {type_}", span)
    return next(type_.iter_unpack(bits.to_bytes(width, "little")))


def _float_in_range(parser: Parser, span: Span, value: float, type_: AnyFloat) -> float:
    """`value`, or a parse error when it rounds to infinity in `type_` (MLIR's text has no
    infinite decimal literals: ±inf and NaN are written as bit patterns)."""
    try:
        rounded = next(type_.iter_unpack(type_.pack([value])))
    except OverflowError:
        rounded = math.inf
    if math.isinf(rounded):
        parser.raise_error(f"float literal {span.text.strip()} is out of range for {type_}", span)
    return value


class _Element(Parser._TensorLiteralElement):
    """A `dense<...>` element that reads hexadecimal float elements as bit patterns,
    refuses floats out of their type's range, and wants a complex element for a
    complex type (xDSL asserts)."""

    def to_type(self, parser, type_):
        if isinstance(type_, AnyFloat):
            if isinstance(self.value, int) and not isinstance(self.value, bool) and _is_hex(self.span):
                return _float_from_bits(parser, self.span, abs(self.value), type_)
            if isinstance(self.value, float):
                return _float_in_range(parser, self.span, self.value, type_)
            if isinstance(self.value, tuple):
                parser.raise_error(f"a complex literal is not a value of {type_}", self.span)
        if isinstance(type_, ComplexType) and not isinstance(self.value, tuple):
            parser.raise_error(f"expected a complex literal `(re, im)` for {type_}", self.span)
        return super().to_type(parser, type_)


def _located(span: Span, message: str, line_offset: int = 0) -> ParseFailure:
    loc = span.get_location()
    return ParseFailure(str(loc.file), loc.line + line_offset, loc.col, message)


def parse_module(text: str, ctx: Context, filename: str = "<stdin>", line_offset: int = 0,
                 check: Callable[[Operation], str | None] | None = None) -> ModuleOp:
    """Parse and verify one module; any error is a `ParseFailure` at its place in the text.

    `check(op)` may add a test of its own (a reason, or None), reported the same way."""
    return parse_module_located(text, ctx, filename, line_offset, check)[0]


def parse_module_located(text: str, ctx: Context, filename: str = "<stdin>", line_offset: int = 0,
                         check: Callable[[Operation], str | None] | None = None, *,
                         verify: bool = True, implicit_module: bool = True,
                         ) -> tuple[ModuleOp, dict[Operation, Span]]:
    """`parse_module`, also giving where each op starts in the text (for later diagnostics).

    `verify=False` skips the verifiers (not `check`); `implicit_module=False` requires
    the text to be one top-level op, as `--no-implicit-module` does."""
    try:
        parser = LocatingParser(ctx, text, filename)  # lexes the first token: may fail already
    except ParseError as err:
        raise _located(err.span, err.msg, line_offset) from None
    try:
        with paused_gc():
            module = parser.parse_module(implicit_module)
    except ParseError as err:
        undeclared = parser.undeclared_use()
        if undeclared is not None and err.msg.startswith("values used but not defined"):
            raise _located(undeclared, f"use of undeclared SSA value {undeclared.text}",
                           line_offset) from None
        raise _located(err.span, err.msg, line_offset) from None
    except VerifyException as err:  # raised outside any op (a top-level attribute): where parsing stopped
        raise _located(parser._current_token.span, str(err), line_offset) from None
    except RecursionError:
        raise ParseFailure(filename, 1 + line_offset, 1, "input is nested too deeply") from None
    except MemoryError:
        raise ParseFailure(filename, 1 + line_offset, 1, "input is too large to parse") from None
    if verify or check is not None:
        verify_ops(module, parser.op_spans, filename, line_offset, check, verify=verify)
    return module, parser.op_spans


def verify_ops(module: ModuleOp, spans: dict[Operation, Span], filename: str,
               line_offset: int = 0, check: Callable[[Operation], str | None] | None = None,
               verify: bool = True) -> None:
    """Verify op by op, raising a located `ParseFailure` for the first that fails."""
    for op in module.walk():
        try:
            if verify:
                op.verify(verify_nested_ops=False)
            problem = check(op) if check is not None else None
        except (VerifyException, ValueError) as err:
            problem = str(err)
        if problem:
            span = spans.get(op)
            if span is None:
                raise ParseFailure(filename, 1, 1, f"{op.name}: {problem}") from None
            raise _located(span, problem, line_offset) from None
