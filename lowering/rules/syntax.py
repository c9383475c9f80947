"""Rule text → rule syntax tree, every node with its place in the file.

The text parsed is a rule file with its templates expanded (`expand.py`).
The grammar (`grammar.lark`) is LALR(1), so a rule file parses in one pass and
lark's own errors already know the line and column; this module turns them
into `ParseFailure`s that say what was expected in the rule language's terms,
and turns the lark tree into small frozen dataclasses that the compiler
(`compiler.py`) checks against the registered dialects. Nothing here knows about
xDSL: literals stay text until the compiler parses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Union

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from qir.errors import ParseFailure

# --------------------------------------------------------------------------
# The syntax tree.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pos:
    """Where a node starts: 1-based line and column, 0-based offset into the text."""

    line: int
    column: int
    offset: int

    @staticmethod
    def of(token: Token) -> "Pos":
        return Pos(token.line, token.column, token.start_pos)


@dataclass(frozen=True)
class ValueRef:
    """`%name`: a value (in a match, binds it; elsewhere, reads it)."""

    name: str
    pos: Pos

    def __str__(self) -> str:
        return f"%{self.name}"


@dataclass(frozen=True)
class VariadicRef:
    """`%name...`: the remaining operands (in a match) or all of them (as new operands)."""

    name: str
    pos: Pos

    def __str__(self) -> str:
        return f"%{self.name}..."


@dataclass(frozen=True)
class Wildcard:
    """`_`: any operand, any type, or (as an attribute) any value that is present."""

    pos: Pos


@dataclass(frozen=True)
class CapRef:
    """`$name`, or `$name?` in an attribute pattern (binds None when the entry is absent)."""

    name: str
    optional: bool
    pos: Pos

    def __str__(self) -> str:
        return f"${self.name}"


@dataclass(frozen=True)
class Literal:
    """MLIR attribute or type text, parsed by xDSL when the rules are compiled."""

    text: str
    pos: Pos


@dataclass(frozen=True)
class Call:
    """`name(args)`: a function of the rule set."""

    name: str
    args: tuple["Expr", ...]
    pos: Pos


Expr = Union[ValueRef, CapRef, Literal, Call]
OperandPattern = Union[ValueRef, VariadicRef, Wildcard]
TypePattern = Union[CapRef, Wildcard, Literal]
AttrPattern = Union[CapRef, Wildcard, Literal]


@dataclass(frozen=True)
class OpRef:
    """`dialect.op`, or `aten.op "overload"`."""

    name: str
    pos: Pos
    target: str | None = None
    target_pos: Pos | None = None


@dataclass(frozen=True)
class AttrConstraint:
    key: str
    value: AttrPattern
    pos: Pos


@dataclass(frozen=True)
class MatchOp:
    """One op of a match block: `%r = dialect.op(operands) {attrs} : (types) -> types`."""

    results: tuple[ValueRef, ...]
    op: OpRef
    operands: tuple[OperandPattern, ...]
    attrs: tuple[AttrConstraint, ...]
    operand_types: tuple[TypePattern, ...] | None
    result_types: tuple[TypePattern, ...] | None
    pos: Pos
    signature_pos: Pos | None = None


@dataclass(frozen=True)
class Feature:
    """The feature of `target has FEATURE`."""

    name: str
    pos: Pos


@dataclass(frozen=True)
class Condition:
    """A where-condition: `expr`, `not expr`, `lhs == rhs`, `lhs != rhs`, `target has F` or
    `not target has F` (then `lhs` is the `Feature`)."""

    kind: str  # "true", "not", "eq", "ne", "target_has", "target_lacks"
    lhs: Expr | Feature
    rhs: Expr | None
    pos: Pos


@dataclass(frozen=True)
class AttrSetter:
    key: str
    value: Expr
    pos: Pos


@dataclass(frozen=True)
class BuildOp:
    """A replace statement building an op: `%r = dialect.op(operands) {attrs} -> types`."""

    results: tuple[ValueRef, ...]
    op: OpRef
    operands: tuple[ValueRef | VariadicRef, ...]
    attrs: tuple[AttrSetter, ...]
    result_types: tuple[Expr, ...] | None
    pos: Pos


@dataclass(frozen=True)
class Alias:
    """`%y = %x`: the matched value `%y` is replaced by the existing value `%x`."""

    result: ValueRef
    source: ValueRef
    pos: Pos


Statement = Union[BuildOp, Alias]


@dataclass(frozen=True)
class RuleSyntax:
    name: str
    pos: Pos
    benefit: int
    match: tuple[MatchOp, ...]
    where: tuple[Condition, ...]
    replace: tuple[Statement, ...]
    provenance: ValueRef | None = None
    """`provenance %c`: new ops take their provenance from the op defining %c first."""


# --------------------------------------------------------------------------
# lark tree → syntax tree.
# --------------------------------------------------------------------------


def _name(token: Token) -> str:
    """A `%name`/`$name`/`%name...` token without its sigil and ellipsis."""
    return str(token)[1:].removesuffix("...")


def _present(items) -> list:
    """The items of an optional `[a ("," a)*]` list (lark gives None when it is empty)."""
    return [i for i in items if i is not None]


@v_args(inline=True)
class _ToSyntax(Transformer):
    """Bottom-up conversion; each method receives the children of one grammar rule."""

    def start(self, *rules):
        return list(rules)

    def rule(self, name, *parts):
        benefit = 1
        if isinstance(parts[0], int):
            benefit, parts = parts[0], parts[1:]
        match, *rest = parts
        where: tuple[Condition, ...] = ()
        provenance = None
        if isinstance(rest[0], _Where):
            where, rest = tuple(rest[0]), rest[1:]
        if isinstance(rest[0], _Provenance):
            provenance, rest = rest[0].value, rest[1:]
        return RuleSyntax(str(name), Pos.of(name), benefit, match, where, rest[0], provenance)

    def benefit(self, value):
        return int(value)

    def provenance(self, token):
        return _Provenance(ValueRef(_name(token), Pos.of(token)))

    # -- match --

    def match(self, *ops):
        return tuple(ops)

    def match_op(self, *children):
        results: tuple[ValueRef, ...] = ()
        items = list(children)
        if isinstance(items[0], tuple):
            results = items.pop(0)
        op: OpRef = items.pop(0)
        signature = None
        if items and isinstance(items[-1], _Signature):
            signature = items.pop()
        attrs: tuple[AttrConstraint, ...] = ()
        if items and isinstance(items[-1], _AttrList):
            attrs = tuple(items.pop())
        operands = tuple(_present(items))
        pos = results[0].pos if results else op.pos
        return MatchOp(results, op, operands, attrs,
                       signature.operands if signature else None,
                       signature.results if signature else None,
                       pos, signature.pos if signature else None)

    def results(self, *values):
        return tuple(ValueRef(_name(v), Pos.of(v)) for v in values)

    def op_ref(self, name, target=None):
        if target is None:
            return OpRef(str(name), Pos.of(name))
        return OpRef(str(name), Pos.of(name), _unquote(target), Pos.of(target))

    def operand_value(self, token):
        return ValueRef(_name(token), Pos.of(token))

    def operand_variadic(self, token):
        return VariadicRef(_name(token), Pos.of(token))

    def operand_any(self, token):
        return Wildcard(Pos.of(token))

    def attr_pattern(self, *constraints):
        return _AttrList(_present(constraints))

    def attr_constraint(self, key, value):
        return AttrConstraint(str(key), value, Pos.of(key))

    def attr_cap(self, token):
        return CapRef(_name(token), False, Pos.of(token))

    def attr_optional_cap(self, token):
        return CapRef(_name(token), True, Pos.of(token))

    def attr_present(self, token):
        return Wildcard(Pos.of(token))

    def attr_literal(self, token):
        return Literal(str(token), Pos.of(token))

    def signature(self, *children):
        *operands, results = children
        first = operands[0] if operands and operands[0] is not None else None
        pos = first.pos if first is not None else (results[0].pos if results else None)
        if not operands:  # `-> types` alone
            return _Signature(None, results, pos)
        return _Signature(tuple(_present(operands)), results, pos)

    def one_type(self, pattern):
        return (pattern,)

    def type_list(self, *patterns):
        return tuple(_present(patterns))

    def type_cap(self, token):
        return CapRef(_name(token), False, Pos.of(token))

    def type_any(self, token):
        return Wildcard(Pos.of(token))

    def type_literal(self, token):
        return Literal(str(token), Pos.of(token))

    # -- where --

    def where(self, *conditions):
        return _Where(conditions)

    def cond_true(self, expr):
        return Condition("true", expr, None, expr.pos)

    def cond_not(self, keyword, expr):
        return Condition("not", expr, None, Pos.of(keyword))

    def cond_target_has(self, keyword, feature):
        return Condition("target_has", Feature(str(feature), Pos.of(feature)), None, Pos.of(keyword))

    def cond_target_lacks(self, keyword, target, feature):
        return Condition("target_lacks", Feature(str(feature), Pos.of(feature)), None, Pos.of(keyword))

    def cond_eq(self, lhs, rhs):
        return Condition("eq", lhs, rhs, lhs.pos)

    def cond_ne(self, lhs, rhs):
        return Condition("ne", lhs, rhs, lhs.pos)

    def call(self, name, *args):
        return Call(str(name), tuple(_present(args)), Pos.of(name))

    def value_ref(self, token):
        return ValueRef(_name(token), Pos.of(token))

    def cap_ref(self, token):
        return CapRef(_name(token), False, Pos.of(token))

    def literal(self, token):
        return Literal(str(token), Pos.of(token))

    # -- replace --

    def replace(self, *statements):
        return tuple(statements)

    def build(self, *children):
        items = list(children)
        results: tuple[ValueRef, ...] = items.pop(0) if isinstance(items[0], tuple) else ()
        op: OpRef = items.pop(0)
        types = None
        if items and isinstance(items[-1], _TypeExprs):
            types = tuple(items.pop())
        attrs: tuple[AttrSetter, ...] = ()
        if items and isinstance(items[-1], _AttrList):
            attrs = tuple(items.pop())
        return BuildOp(results, op, tuple(_present(items)), attrs, types, results[0].pos if results else op.pos)

    def alias(self, results, source):
        return Alias(results[0], ValueRef(_name(source), Pos.of(source)), results[0].pos) \
            if len(results) == 1 else _BadAlias(results)

    def build_value(self, token):
        return ValueRef(_name(token), Pos.of(token))

    def build_variadic(self, token):
        return VariadicRef(_name(token), Pos.of(token))

    def attr_build(self, *setters):
        return _AttrList(_present(setters))

    def attr_setter(self, key, value):
        return AttrSetter(str(key), value, Pos.of(key))

    def one_result_type(self, expr):
        return _TypeExprs([expr])

    def result_type_list(self, *exprs):
        return _TypeExprs(_present(exprs))


class _Where(tuple):
    """The conditions of a where clause, told apart from the statements of a replace block."""


@dataclass(frozen=True)
class _Provenance:
    value: ValueRef


class _AttrList(list):
    """An attribute dictionary, told apart from operand lists while a node is assembled."""


class _TypeExprs(list):
    """The `-> types` of a replace statement."""


@dataclass(frozen=True)
class _Signature:
    operands: tuple[TypePattern, ...] | None
    results: tuple[TypePattern, ...]
    pos: Pos | None


@dataclass(frozen=True)
class _BadAlias:
    results: tuple[ValueRef, ...]


def _unquote(token: Token) -> str:
    """The text of a string token, MLIR escapes (`\\"`, `\\\\`, `\\n`, `\\t`, `\\XX`) resolved."""
    body = str(token)[1:-1]
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "\"\\":
                out.append(nxt)
                i += 2
                continue
            if nxt in "nt":
                out.append("\n" if nxt == "n" else "\t")
                i += 2
                continue
            if i + 2 < len(body) and all(ch in "0123456789abcdefABCDEF" for ch in body[i + 1:i + 3]):
                out.append(chr(int(body[i + 1:i + 3], 16)))
                i += 3
                continue
        out.append(c)
        i += 1
    return "".join(out)


# --------------------------------------------------------------------------
# Parsing, with errors in the language's own terms.
# --------------------------------------------------------------------------

GRAMMAR = Path(__file__).with_name("grammar.lark")

_TERMINAL_NAMES = {
    "NAME": "a name",
    "KEY": "an attribute name",
    "OP_NAME": "an op name (dialect.op)",
    "FUNC": "a function call",
    "VALUE": "a value (%name)",
    "VARIADIC": "variadic values (%name...)",
    "CAP": "a capture ($name)",
    "STRING": "a string",
    "INT": "an integer",
    "NOT": "'not'",
    "TARGET": "'target'",
    "WILDCARD": "'_'",
    "LIT": "an attribute or type",
    "$END": "the end of the file",
}


@cache
def _lark() -> Lark:
    """The parser, built once per process (LALR tables take a quarter of a second)."""
    return Lark(GRAMMAR.read_text(), parser="lalr", maybe_placeholders=True)


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    try:
        pattern = _lark().get_terminal(name).pattern
    except KeyError:
        return name
    return f"'{pattern.value}'" if pattern.type == "str" else name


def _expected(names) -> str:
    described = sorted({_describe_terminal(n) for n in names if n not in ("WS", "COMMENT")})
    if not described:
        return ""
    if len(described) == 1:
        return f"; expected {described[0]}"
    return "; expected one of " + ", ".join(described)


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _failure(err: UnexpectedInput, text: str, filename: str) -> ParseFailure:
    if isinstance(err, UnexpectedCharacters):
        char = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        what = "a line break" if char == "\n" else repr(char)
        hint = (" (unbalanced brackets in a literal, or nested more than 8 deep?)" if char in "<["
                else _expected(err.allowed or ()))
        return ParseFailure(filename, err.line, err.column, f"unexpected character {what}{hint}")
    if isinstance(err, UnexpectedToken):
        token = err.token
        expected = err.expected
        if err.interactive_parser is not None:
            # LALR merges states, so `expected` may list tokens that would fail a step later;
            # the interactive parser tries each one through the pending reductions.
            try:
                expected = err.interactive_parser.accepts() or expected
            except UnexpectedInput:
                pass
        if token.type == "$END":
            line, column = _end_position(text)
            return ParseFailure(filename, line, column, f"unexpected end of file{_expected(expected)}")
        return ParseFailure(filename, token.line, token.column,
                            f"unexpected {str(token)!r}{_expected(expected)}")
    if isinstance(err, UnexpectedEOF):
        line, column = _end_position(text)
        return ParseFailure(filename, line, column, f"unexpected end of file{_expected(err.expected)}")
    line = getattr(err, "line", 1) or 1
    column = getattr(err, "column", 1) or 1
    return ParseFailure(filename, line, column, str(err))


def parse_rules(text: str, filename: str = "<rules>") -> list[RuleSyntax]:
    """The rules of a rule file, in file order; a `ParseFailure` at the first syntax error."""
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as err:
        raise _failure(err, text, filename) from None
    rules = _ToSyntax().transform(tree)
    for rule in rules:
        for statement in rule.replace:
            if isinstance(statement, _BadAlias):
                extra = statement.results[1]
                raise ParseFailure(filename, extra.pos.line, extra.pos.column,
                                   "an alias redefines one value: write `%y = %x`")
    return rules
