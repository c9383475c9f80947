"""Rule syntax → checked, compiled rules (`matcher.Rule`).

A rule file is expanded (`expand.py`: loops, includes, parameters), parsed
(`syntax.py`) and compiled here. Everything that can be known about a rule
before it meets IR is checked once, when the rule file is loaded, and reported
as a `ParseFailure` at its place in the file (in a template, where the
template says it, with the values it was expanded for): op names against the
context's dialects (and operand and result counts against their IRDL
definitions), `aten.op` overloads against torch's schemas, function names and
arities, target features, every `%name` and `$name`, every literal (parsed by
xDSL's own attribute parser, its errors moved to the literal's place in the
file), that the match block is one dataflow tree rooted at its last op, and
that the replacement redefines every result of the root. What is left for
rewriting time is what depends on the IR.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdsl.context import Context
from xdsl.dialects.builtin import NoneAttr, NoneType
from xdsl.ir import Attribute, Operation
from xdsl.irdl import AttrSizedOperandSegments, IRDLOperation, VariadicDef
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError
from xdsl.utils.mlir_lexer import MLIRTokenKind

from qir.errors import ParseFailure
from qir.lowering.rules import syntax as ast
from qir.lowering.rules.expand import Location, Mapped, SourceFile, expand_rules
from qir.lowering.rules.functions import aten_argument, arity, comparable, entry, takes_target, truth
from qir.lowering.rules.matcher import (
    ANY,
    ATTR_ABSENT,
    ATTR_CAP,
    ATTR_EQUAL,
    ATTR_OPTIONAL_CAP,
    ATTR_PRESENT,
    BIND,
    REST,
    TARGET,
    TYPE_ANY,
    TYPE_CAP,
    TYPE_EQUAL,
    AliasStatement,
    AttrCheck,
    Caps,
    Evaluator,
    OpBuilder,
    OperandSlot,
    OpMatcher,
    Rule,
    RuleFailure,
    TypeCheck,
    Values,
)

ATEN_OP = "aten.op"


@dataclass
class _Binding:
    """What a `%name` of a match block stands for."""

    variadic: bool
    pos: ast.Pos
    op_index: int | None = None
    """The match op defining it (None: an operand from outside the match)."""
    result_index: int = 0
    used: bool = False
    """Used as an operand by a later match op (for results)."""


@dataclass
class _ReplaceScope:
    """The names visible in a replace block, statement after statement."""

    bindings: dict[str, _Binding]
    root_results: set[str]
    pending: set[str]
    """Root results not yet redefined: reading them as operands would keep the root alive."""
    redefined: set[str] = field(default_factory=set)
    new: set[str] = field(default_factory=set)

    def kind(self, name: str) -> str | None:
        if name in self.new:
            return "value"
        binding = self.bindings.get(name)
        if binding is None:
            return None
        return "variadic" if binding.variadic else "value"


class RuleCompiler:
    """Compiles the rules of one file against a context and a function table."""

    def __init__(self, source: Mapped | str, filename: str, ctx: Context,
                 functions: Mapping[str, Callable[..., Any]], verify: bool = False):
        if isinstance(source, str):
            source = Mapped.of(SourceFile(filename, source))
        self.source = source
        """The (expanded) text the syntax tree was parsed from, which knows where each part was written."""
        self.filename = filename
        self.ctx = ctx
        self.functions = functions
        self.verify = verify
        self._literals: dict[tuple[str, str], Attribute | None] = {}
        self._arities: dict[str, Any] = {}
        self._uses_target = False
        """Whether the rule being compiled asks about the target (a condition or a function)."""

    # -- errors --

    def where(self, pos: ast.Pos) -> Location:
        """Where a node was written (in a template, with the values it was expanded for)."""
        return self.source.locate(pos.offset)

    def error(self, pos: ast.Pos, message: str) -> ParseFailure:
        return self.where(pos).error(message)

    def _elsewhere(self, pos: ast.Pos, reported: ast.Pos) -> str:
        """`line N` when `pos` is in the file of `reported`, else `file:line:col`."""
        there, here = self.where(pos), self.where(reported)
        if there.filename == here.filename:
            return f"line {there.line}"
        return f"{there.filename}:{there.line}:{there.column}"

    # -- rules --

    def compile(self, rules: Sequence[ast.RuleSyntax]) -> list[Rule]:
        seen: dict[str, ast.Pos] = {}
        compiled = []
        for rule in rules:
            if rule.name in seen:
                first = seen[rule.name]
                raise self.error(rule.pos, f"rule {rule.name!r} is already defined at "
                                           f"{self._elsewhere(first, rule.pos)}")
            seen[rule.name] = rule.pos
            compiled.append(self.compile_rule(rule))
        return compiled

    def compile_rule(self, rule: ast.RuleSyntax) -> Rule:
        self._uses_target = any(c.kind in ("target_has", "target_lacks") for c in rule.where)
        bindings: dict[str, _Binding] = {}
        caps: dict[str, ast.Pos] = {}
        matchers = [self._match_op(i, op, bindings, caps) for i, op in enumerate(rule.match)]
        for i, (op, matcher) in enumerate(zip(rule.match[:-1], matchers[:-1])):
            anchor = next(((r.name, k) for k, r in enumerate(op.results) if bindings[r.name].used), None)
            if anchor is None:
                raise self.error(op.pos, f"{op.op.name} does not feed a later op of the match: every op "
                                         "of a match block must be used by one after it, up to the root "
                                         "(the last)")
            matcher.anchor = anchor
        conditions = tuple(self._condition(c, bindings, caps) for c in rule.where)
        provenance = self._provenance(rule.provenance, bindings) if rule.provenance is not None else None
        root = rule.match[-1]
        statements = self._replace(rule, root, bindings, caps)
        at = self.where(rule.pos)
        return Rule(rule.name, rule.benefit, at.filename, at.line, at.column, tuple(matchers), conditions,
                    statements, self.verify, provenance, self._uses_target)

    def _provenance(self, ref: ast.ValueRef, bindings: dict[str, _Binding]) -> str:
        binding = bindings.get(ref.name)
        if binding is None:
            raise self.error(ref.pos, f"%{ref.name} is not defined")
        if binding.op_index is None:
            raise self.error(ref.pos, f"%{ref.name} is not a result of a matched op: provenance names the op "
                                      "whose module new ops are attributed to")
        return ref.name

    # -- match --

    def _op_class(self, ref: ast.OpRef) -> type[Operation]:
        op_class = self.ctx.get_optional_op(ref.name)
        if op_class is None:
            dialect = ref.name.split(".")[0]
            if dialect not in self.ctx.registered_dialect_names:
                raise self.error(ref.pos, f"unknown op {ref.name!r}: no dialect {dialect!r} is registered")
            raise self.error(ref.pos, f"unknown op {ref.name!r}: dialect {dialect!r} has no such op")
        if ref.name == ATEN_OP:
            if ref.target is None:
                raise self.error(ref.pos, 'aten.op needs its ATen overload: aten.op "relu.default"(%x)')
            from qir.dialects.aten import resolve_python_target, schema_of

            known = (resolve_python_target(ref.target) is not None if ref.target.startswith("py::")
                     else schema_of(ref.target) is not None)
            if not known:
                raise self.error(ref.target_pos, f"torch has no operator overload {ref.target!r}")
        elif ref.target is not None:
            raise self.error(ref.target_pos, f"only aten.op names an overload; {ref.name} takes none")
        return op_class

    def _match_op(self, index: int, op: ast.MatchOp, bindings: dict[str, _Binding],
                  caps: dict[str, ast.Pos]) -> OpMatcher:
        op_class = self._op_class(op.op)
        rest_at = None
        slots = []
        if op.operand_types is not None and len(op.operand_types) != len(op.operands):
            raise self.error(op.signature_pos or op.pos,
                             f"{len(op.operand_types)} operand types for {len(op.operands)} operands")
        if op.result_types is not None and len(op.result_types) != len(op.results):
            raise self.error(op.signature_pos or op.pos,
                             f"{len(op.result_types)} result types for {len(op.results)} results")
        for i, operand in enumerate(op.operands):
            type_check = self._type_pattern(op.operand_types[i], caps) if op.operand_types is not None else None
            if isinstance(operand, ast.Wildcard):
                slots.append(OperandSlot(ANY, None, type_check))
                continue
            variadic = isinstance(operand, ast.VariadicRef)
            if variadic:
                if rest_at is not None:
                    raise self.error(operand.pos, "one op may have only one variadic operand (%name...)")
                rest_at = i
            binding = bindings.get(operand.name)
            if binding is None:
                bindings[operand.name] = _Binding(variadic, operand.pos)
            elif binding.variadic != variadic:
                if binding.op_index is not None:
                    raise self.error(operand.pos, f"%{operand.name} is one result of a matched op: it "
                                                  "cannot stand for variadic operands")
                raise self.error(operand.pos, f"%{operand.name} is variadic in one place and not in another")
            else:
                binding.used = True
            slots.append(OperandSlot(REST if variadic else BIND, operand.name, type_check))
        self._check_operand_count(op_class, op.op, len(op.operands), rest_at is not None, op.pos)
        self._check_result_count(op_class, op.op, len(op.results), op.pos)
        for k, result in enumerate(op.results):
            if result.name in bindings:
                earlier = bindings[result.name]
                if earlier.op_index is not None:
                    raise self.error(result.pos, f"%{result.name} is defined twice")
                used = self._elsewhere(earlier.pos, result.pos)
                raise self.error(result.pos, f"%{result.name} is used at {used} before it is defined here: "
                                             "list the ops of a match in dataflow order")
            bindings[result.name] = _Binding(False, result.pos, index, k)
        result_types = None
        if op.result_types is not None:
            result_types = tuple(self._type_pattern(t, caps) for t in op.result_types)
        attrs = []
        keys: set[str] = set()
        for constraint in op.attrs:
            if constraint.key in keys:
                raise self.error(constraint.pos, f"entry {constraint.key!r} is constrained twice")
            keys.add(constraint.key)
            attrs.append(self._attr_pattern(constraint, caps))
        return OpMatcher(op.op.name, op.op.target, tuple(r.name for r in op.results), result_types,
                         tuple(slots), rest_at, tuple(attrs), aten_argument if op.op.name == ATEN_OP else entry)

    def _irdl(self, op_class: type[Operation]):
        if op_class.name == ATEN_OP or not issubclass(op_class, IRDLOperation):
            return None
        return op_class.get_irdl_definition()

    def _check_operand_count(self, op_class, ref: ast.OpRef, count: int, variadic: bool, pos: ast.Pos) -> None:
        definition = self._irdl(op_class)
        if definition is None:
            return
        variadic_defs = sum(1 for _, d in definition.operands if isinstance(d, VariadicDef))
        fixed = len(definition.operands) - variadic_defs
        if variadic_defs:
            if not variadic and count < fixed:
                raise self.error(pos, f"{ref.name} takes at least {fixed} operands, the pattern gives {count}")
            return
        if variadic:
            if count - 1 > fixed:
                raise self.error(pos, f"{ref.name} takes {fixed} operands, the pattern gives more")
        elif count != fixed:
            raise self.error(pos, f"{ref.name} takes {fixed} operand{'s' if fixed != 1 else ''}, "
                                  f"the pattern gives {count}")

    def _check_result_count(self, op_class, ref: ast.OpRef, count: int, pos: ast.Pos) -> None:
        definition = self._irdl(op_class)
        if definition is None:
            return
        if any(isinstance(d, VariadicDef) for _, d in definition.results):
            return
        fixed = len(definition.results)
        if count != fixed:
            raise self.error(pos, f"{ref.name} has {fixed} result{'s' if fixed != 1 else ''}, "
                                  f"the pattern names {count}")

    def _type_pattern(self, pattern: ast.TypePattern, caps: dict[str, ast.Pos]) -> TypeCheck:
        if isinstance(pattern, ast.Wildcard):
            return TypeCheck(TYPE_ANY)
        if isinstance(pattern, ast.CapRef):
            caps.setdefault(pattern.name, pattern.pos)
            return TypeCheck(TYPE_CAP, pattern.name)
        return TypeCheck(TYPE_EQUAL, self.literal(pattern, "type"))

    def _attr_pattern(self, constraint: ast.AttrConstraint, caps: dict[str, ast.Pos]) -> AttrCheck:
        value = constraint.value
        if isinstance(value, ast.Wildcard):
            return AttrCheck(constraint.key, ATTR_PRESENT)
        if isinstance(value, ast.CapRef):
            caps.setdefault(value.name, value.pos)
            return AttrCheck(constraint.key, ATTR_OPTIONAL_CAP if value.optional else ATTR_CAP, value.name)
        attribute = self.literal(value, "attribute")
        if attribute is None:
            return AttrCheck(constraint.key, ATTR_ABSENT)
        return AttrCheck(constraint.key, ATTR_EQUAL, attribute)

    # -- literals --

    def literal(self, literal: ast.Literal, kind: str) -> Attribute | None:
        """The attribute (or type) a literal spells, parsed once; `none` is None outside types."""
        key = (literal.text, kind)
        if key not in self._literals:
            self._literals[key] = self._parse_literal(literal, kind)
        return self._literals[key]

    def _parse_literal(self, literal: ast.Literal, kind: str) -> Attribute | None:
        text = literal.text
        try:
            parser = Parser(self.ctx, text, self.filename)
            value = parser.parse_type() if kind == "type" else parser.parse_attribute()
            token = parser._current_token
            if token.kind != MLIRTokenKind.EOF:
                raise self._literal_error(literal, token.span.start,
                                          f"unexpected {token.text!r} after the {kind} {text[:token.span.start].strip()!r}")
        except ParseError as err:
            raise self._literal_error(literal, err.span.start, err.msg) from None
        except ParseFailure:
            raise
        except Exception as err:  # an attribute that checks itself while it is built
            raise self._literal_error(literal, 0, f"invalid {kind} {text!r}: {err}") from None
        if kind != "type" and isinstance(value, NoneAttr | NoneType):
            return None
        return value

    def _literal_error(self, literal: ast.Literal, offset: int, message: str) -> ParseFailure:
        return self.source.locate(literal.pos.offset + max(0, min(offset, len(literal.text)))).error(message)

    # -- expressions and conditions --

    def expression(self, expr: ast.Expr, names: Callable[[str], str | None],
                   caps: Mapping[str, Any]) -> Evaluator:
        """A closure computing `expr`; `names(n)` says what `%n` is ("value", "variadic") or None."""
        if isinstance(expr, ast.ValueRef):
            if names(expr.name) is None:
                raise self.error(expr.pos, f"%{expr.name} is not defined")
            name = expr.name
            return lambda values, caps_: values[name]
        if isinstance(expr, ast.CapRef):
            if expr.name not in caps:
                raise self.error(expr.pos, f"${expr.name} is not bound by the match")
            name = expr.name
            return lambda values, caps_: caps_[name]
        if isinstance(expr, ast.Literal):
            constant = self.literal(expr, "attribute")
            return lambda values, caps_: constant
        return self._call(expr, names, caps)

    def _call(self, call: ast.Call, names, caps) -> Evaluator:
        fn = self.functions.get(call.name)
        if fn is None:
            raise self.error(call.pos, f"unknown function {call.name!r}")
        if call.name not in self._arities:
            self._arities[call.name] = arity(fn)
        expected = self._arities[call.name]
        if expected is not None and not expected.accepts(len(call.args)):
            raise self.error(call.pos, f"{call.name} takes {expected}, got {len(call.args)}")
        args = tuple(self.expression(a, names, caps) for a in call.args)
        at = self.where(call.pos)
        name, line, column, filename = call.name, at.line, at.column, at.filename
        wants_target = takes_target(fn)
        self._uses_target |= wants_target

        def evaluate(values: Values, caps_: Caps) -> Any:
            arguments = [a(values, caps_) for a in args]
            try:
                return fn(*arguments, target=_target(values)) if wants_target else fn(*arguments)
            except RuleFailure:
                raise
            except Exception as err:
                raise RuleFailure(line, column, f"{name}({', '.join(_show(a) for a in arguments)}) "
                                                f"failed: {type(err).__name__}: {err}", filename) from err

        return evaluate

    def _condition(self, condition: ast.Condition, bindings: dict[str, _Binding],
                   caps: dict[str, ast.Pos]) -> Callable[[Values, Caps], bool]:
        if condition.kind in ("target_has", "target_lacks"):
            return self._target_condition(condition)

        def names(name: str) -> str | None:
            binding = bindings.get(name)
            return None if binding is None else ("variadic" if binding.variadic else "value")

        lhs = self.expression(condition.lhs, names, caps)  # type: ignore[arg-type]
        rhs = self.expression(condition.rhs, names, caps) if condition.rhs is not None else None
        at = self.where(condition.pos)
        line, column, filename = at.line, at.column, at.filename

        def fail(err: Exception):
            return RuleFailure(line, column, str(err), filename)

        if condition.kind in ("true", "not"):
            negate = condition.kind == "not"

            def holds(values: Values, caps_: Caps) -> bool:
                try:
                    return truth(lhs(values, caps_)) != negate
                except TypeError as err:
                    raise fail(err) from None
        else:
            equal = condition.kind == "eq"

            def holds(values: Values, caps_: Caps) -> bool:
                try:
                    return (comparable(lhs(values, caps_)) == comparable(rhs(values, caps_))) == equal
                except TypeError as err:
                    raise fail(err) from None

        return holds

    def _target_condition(self, condition: ast.Condition) -> Callable[[Values, Caps], bool]:
        """`target has F` / `not target has F`: F must be a feature some target can have."""
        from qir.target import ARM_FEATURES, X86_FEATURES

        feature = condition.lhs
        assert isinstance(feature, ast.Feature)
        known = (*X86_FEATURES, *ARM_FEATURES)
        if feature.name not in known:
            raise self.error(feature.pos, f"unknown target feature {feature.name!r} "
                                          f"(features: {', '.join(known)})")
        name, wanted = feature.name, condition.kind == "target_has"

        def holds(values: Values, caps_: Caps) -> bool:
            return (name in _target(values).features) == wanted

        return holds

    # -- replace --

    def _replace(self, rule: ast.RuleSyntax, root: ast.MatchOp, bindings: dict[str, _Binding],
                 caps: dict[str, ast.Pos]) -> tuple:
        root_results = {r.name for r in root.results}
        scope = _ReplaceScope(bindings, root_results, set(root_results))
        statements = []
        for statement in rule.replace:
            if isinstance(statement, ast.Alias):
                statements.append(self._alias(statement, scope))
            else:
                statements.append(self._build(statement, scope, caps))
        for result in root.results:
            if result.name in scope.pending:
                raise self.error(result.pos, f"%{result.name}, a result of the root op {root.op.name}, is "
                                             "not redefined in replace: its uses would have no definition")
        return tuple(statements)

    def _redefine(self, target: ast.ValueRef, scope: _ReplaceScope) -> bool:
        """Check that `target` may be defined here; whether it redefines a matched result."""
        if target.name in scope.new:
            raise self.error(target.pos, f"%{target.name} is defined twice in replace")
        binding = scope.bindings.get(target.name)
        if binding is None:
            return False
        if binding.op_index is None:
            raise self.error(target.pos, f"%{target.name} is not a result of a matched op: only those can "
                                         "be redefined")
        if target.name in scope.redefined:
            raise self.error(target.pos, f"%{target.name} is redefined twice")
        return True

    def _operand(self, ref: ast.ValueRef | ast.VariadicRef, scope: _ReplaceScope) -> tuple[str, bool]:
        kind = scope.kind(ref.name)
        if kind is None:
            raise self.error(ref.pos, f"%{ref.name} is not defined")
        splat = isinstance(ref, ast.VariadicRef)
        if splat and kind != "variadic":
            raise self.error(ref.pos, f"%{ref.name} is one value: write %{ref.name}, without '...'")
        if not splat and kind == "variadic":
            raise self.error(ref.pos, f"%{ref.name} stands for several values: write %{ref.name}...")
        if ref.name in scope.pending:
            raise self.error(ref.pos, f"%{ref.name} is a result of the root op, which the rule erases: "
                                      "redefine it before using it")
        return ref.name, splat

    def _alias(self, alias: ast.Alias, scope: _ReplaceScope) -> AliasStatement:
        name, _ = self._operand(alias.source, scope)
        if not self._redefine(alias.result, scope):
            raise self.error(alias.result.pos, f"%{alias.result.name} is not a result of a matched op: an "
                                               "alias replaces one")
        scope.redefined.add(alias.result.name)
        scope.pending.discard(alias.result.name)
        return AliasStatement(alias.result.name, name)

    def _build(self, build: ast.BuildOp, scope: _ReplaceScope, caps: dict[str, ast.Pos]) -> OpBuilder:
        op_class = self._op_class(build.op)
        operands = tuple(self._operand(ref, scope) for ref in build.operands)
        splats = any(splat for _, splat in operands)
        definition = self._irdl(op_class)
        if definition is not None:
            if definition.regions or definition.successors:
                raise self.error(build.op.pos, f"{build.op.name} has regions or successors: a rule cannot "
                                               "build it (use a Python pattern)")
            if any(isinstance(o, AttrSizedOperandSegments) for o in definition.options):
                raise self.error(build.op.pos, f"{build.op.name} has several variadic operand groups: a "
                                               "rule cannot build it (use a Python pattern)")
            if not splats:
                self._check_operand_count(op_class, build.op, len(operands), False, build.pos)
            self._check_result_count(op_class, build.op, len(build.results), build.pos)

        def names(name: str) -> str | None:
            return scope.kind(name)

        keys: set[str] = set()
        properties, attributes, kwargs = [], [], []
        declared = definition.properties if definition is not None else {}
        schema = None
        if build.op.target is not None:
            from qir.dialects.aten import schema_of

            schema = schema_of(build.op.target)
        for setter in build.attrs:
            if setter.key in keys:
                raise self.error(setter.pos, f"entry {setter.key!r} is set twice")
            keys.add(setter.key)
            entry = (setter.key, self.expression(setter.value, names, caps))
            if schema is not None and schema.arg(setter.key) is not None:
                kwargs.append(entry)
            elif setter.key in declared:
                properties.append(entry)
            else:
                attributes.append(entry)
        result_types = None
        if build.result_types is not None:
            if len(build.result_types) != len(build.results):
                raise self.error(build.pos, f"{len(build.result_types)} result types for "
                                            f"{len(build.results)} results")
            result_types = tuple(self.expression(t, names, caps) for t in build.result_types)
        redefines = []
        for result in build.results:
            redefines.append(self._redefine(result, scope))
        if result_types is None:
            for result, redefined in zip(build.results, redefines):
                if not redefined:
                    raise self.error(result.pos, f"%{result.name} is new: give its type (-> type(...))")
        for result, redefined in zip(build.results, redefines):
            if redefined:
                scope.redefined.add(result.name)
                scope.pending.discard(result.name)
            scope.new.add(result.name)
        at = self.where(build.pos)
        return OpBuilder(op_class, build.op.name, build.op.target, tuple(r.name for r in build.results),
                         tuple(redefines), operands, tuple(properties), tuple(attributes), tuple(kwargs),
                         result_types, at.line, at.column, at.filename)


def _target(values: Values):
    """The target a rule is applied for (`target has F`, a function taking `target=`): the one
    bound when the rule set was applied, else the host."""
    target = values.get(TARGET)
    if target is None:
        from qir.target import host

        target = host()
    return target


def _show(value: Any) -> str:
    """An argument, briefly, for error messages."""
    from xdsl.ir import SSAValue

    if isinstance(value, SSAValue):
        return f"%{value.name_hint}" if value.name_hint else f"<value of type {value.type}>"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return str(value)


def compile_source(text: str, filename: str, ctx: Context, functions: Mapping[str, Callable[..., Any]],
                   verify: bool = False, directory: Path | None = None) -> tuple[list[Rule], list[Path]]:
    """Expand, parse and compile every rule of a file; the rules and the files it includes.
    The first error is a `ParseFailure` at its place (in a template: where the template
    says it, with the values it was expanded for)."""
    expansion = expand_rules(text, filename, directory)
    source = expansion.text
    try:
        syntax = ast.parse_rules(source.text, filename)
    except ParseFailure as err:
        raise _moved(err, source) from None
    return RuleCompiler(source, filename, ctx, functions, verify).compile(syntax), expansion.dependencies


def compile_rules(text: str, filename: str, ctx: Context, functions: Mapping[str, Callable[..., Any]],
                  verify: bool = False) -> list[Rule]:
    """Expand, parse and compile every rule of a file; the first error is a `ParseFailure`."""
    return compile_source(text, filename, ctx, functions, verify)[0]


def _moved(err: ParseFailure, source: Mapped) -> ParseFailure:
    """A syntax error of the expanded text, at its place in the file that says it."""
    expanded = SourceFile(err.filename, source.text)
    if err.line - 1 >= len(expanded._line_starts):
        return err
    offset = expanded._line_starts[err.line - 1] + err.column - 1
    if offset >= len(source.text) and source.text:
        at = source.locate(len(source.text))
    else:
        at = source.locate(offset)
    return at.error(err.message)
