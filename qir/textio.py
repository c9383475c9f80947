"""Reading IR text with errors located as `file:line:col: error: ...`.

xDSL reports parse errors with their span but verifies ops after parsing,
when their position in the text is gone. This parser remembers where each
op started, then verifies op by op, so that an op that does not verify is
reported at its own line, the way mlir-opt does it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError, VerifyException
from xdsl.utils.lexer import Span
from xdsl.utils.mlir_lexer import MLIRLexer

from qir.errors import ParseFailure
from qir.gc_pause import paused_gc

# xDSL 0.74 lexes string literals with `"(?:[^"\\\n]+|\\...)*"`: a nested quantifier that
# backtracks exponentially on an unterminated string (`aten.op "relu.default(%x) : ...` hangs
# for minutes). The same language, unrolled so that every character is consumed one way only:
MLIRLexer._unescaped_characters_regex = re.compile(
    r'"[^"\\\n\v\f]*(?:\\(?:["nt\\]|[0-9A-Fa-f]{2})[^"\\\n\v\f]*)*"'
)


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
    except (RecursionError, MemoryError):
        raise ParseFailure(filename, 1 + line_offset, 1, "input is nested too deeply") from None
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
