"""Compiled rules at work: matching a root op, checking conditions, rewriting.

A compiled `Rule` is plain data plus closures, built once by `compiler.py`:
every literal is already an attribute, every function already resolved, every
name already checked. Matching starts at the root (the last op of the match
block) and walks operands upwards: each earlier op of the pattern is found as
the defining op of a value the later ops bound, so a match is a few dictionary
and identity tests, never a search. `RulePattern` is the xDSL `RewritePattern`
that dispatches an op to the rules of its name (and, for `aten.op`, its
overload) through one dictionary lookup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xdsl.dialects.builtin import NoneAttr, UnknownLoc
from xdsl.ir import Attribute, Operation, OpResult, SSAValue, TypeAttribute
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import VerifyException

from qir.dialects.aten import AtenOp
from qir.errors import OpError
from qir.lowering.rules.functions import to_attribute

Values = dict[str, "SSAValue | tuple[SSAValue, ...]"]
Caps = dict[str, "Attribute | None"]
Evaluator = Callable[[Values, Caps], Any]
"""A compiled expression: reads the bound values and captures, returns a Python value."""

PROVENANCE = ("module", "module_type")
"""Discardable attributes every new op takes over from the matched ops (unless the rule sets them)."""

TARGET = "<target>"
"""Where a rule that asks `target has F` finds the target among its bound values (no `%name`
can spell it)."""


class RuleFailure(Exception):
    """A function or conversion failed while a rule was matched or applied.

    Raised inside evaluators, which do not know the op; `Rule` turns it into an
    `OpError` naming the root op, the rule and the place in the rule file."""

    def __init__(self, line: int, column: int, message: str, filename: str | None = None):
        self.line, self.column, self.message, self.filename = line, column, message, filename
        super().__init__(message)


# --------------------------------------------------------------------------
# Checks on one matched op.
# --------------------------------------------------------------------------

# Operand pattern kinds.
BIND, ANY, REST = 0, 1, 2

# Attribute pattern kinds.
ATTR_EQUAL, ATTR_ABSENT, ATTR_CAP, ATTR_OPTIONAL_CAP, ATTR_PRESENT = range(5)

# Type pattern kinds.
TYPE_ANY, TYPE_CAP, TYPE_EQUAL = range(3)


@dataclass(frozen=True)
class AttrCheck:
    key: str
    kind: int
    value: Any = None
    """The attribute for ATTR_EQUAL, the capture name for ATTR_CAP/ATTR_OPTIONAL_CAP."""


@dataclass(frozen=True)
class TypeCheck:
    kind: int
    value: Any = None
    """The type for TYPE_EQUAL, the capture name for TYPE_CAP."""


@dataclass(frozen=True)
class OperandSlot:
    kind: int
    name: str | None
    type_check: TypeCheck | None


def _bind(table: dict, name: str, value: Any) -> bool:
    """Bind `name`, or check that it is bound to the same value (identity for values)."""
    old = table.get(name, _UNBOUND)
    if old is _UNBOUND:
        table[name] = value
        return True
    if old is value:
        return True
    if isinstance(old, tuple):
        return isinstance(value, tuple) and len(old) == len(value) and all(
            a is b for a, b in zip(old, value))
    return not isinstance(old, SSAValue) and old == value


_UNBOUND = object()


def _check_type(check: TypeCheck, type_: Attribute, caps: Caps) -> bool:
    if check.kind == TYPE_ANY:
        return True
    if check.kind == TYPE_EQUAL:
        return type_ == check.value
    return _bind(caps, check.value, type_)


@dataclass(eq=False)
class OpMatcher:
    """One op of a match block."""

    name: str
    target: str | None
    """The overload of an `aten.op`."""
    results: tuple[str, ...]
    result_types: tuple[TypeCheck, ...] | None
    slots: tuple[OperandSlot, ...]
    rest_at: int | None
    """Index of the `%name...` slot, if any."""
    attrs: tuple[AttrCheck, ...]
    read_entry: Callable[[Operation, str], Attribute | None]
    anchor: tuple[str, int] | None = None
    """For an op before the root: a result name a later op uses, and its index."""

    def match(self, op: Operation, values: Values, caps: Caps) -> bool:
        results = op.results
        if len(results) != len(self.results):
            return False
        operands = op.operands
        slots = self.slots
        if self.rest_at is None:
            if len(operands) != len(slots):
                return False
        elif len(operands) < len(slots) - 1:
            return False
        if self.target is not None and op.target.data != self.target:  # type: ignore[attr-defined]
            return False
        for check in self.attrs:
            value = self.read_entry(op, check.key)
            if type(value) is NoneAttr:
                value = None
            kind = check.kind
            if kind == ATTR_EQUAL:
                if value != check.value:
                    return False
            elif kind == ATTR_ABSENT:
                if value is not None:
                    return False
            elif kind == ATTR_PRESENT:
                if value is None:
                    return False
            elif kind == ATTR_CAP:
                if value is None or not _bind(caps, check.value, value):
                    return False
            elif not _bind(caps, check.value, value):  # ATTR_OPTIONAL_CAP
                return False
        rest_at = self.rest_at
        for i, slot in enumerate(slots):
            if rest_at is None or i < rest_at:
                value = operands[i]
            elif i > rest_at:
                value = operands[len(operands) - (len(slots) - i)]
            else:
                rest = tuple(operands[i:len(operands) - (len(slots) - 1 - i)])
                if slot.type_check is not None:
                    for v in rest:
                        if not _check_type(slot.type_check, v.type, caps):
                            return False
                if not _bind(values, slot.name, rest):  # type: ignore[arg-type]
                    return False
                continue
            if slot.type_check is not None and not _check_type(slot.type_check, value.type, caps):
                return False
            if slot.kind == BIND and not _bind(values, slot.name, value):  # type: ignore[arg-type]
                return False
        for i, name in enumerate(self.results):
            result = results[i]
            if self.result_types is not None and not _check_type(self.result_types[i], result.type, caps):
                return False
            if not _bind(values, name, result):
                return False
        return True


# --------------------------------------------------------------------------
# Replacement statements.
# --------------------------------------------------------------------------


@dataclass(eq=False)
class OpBuilder:
    """`%r = dialect.op(operands) {entries} -> types` of a replace block."""

    op_class: type[Operation]
    name: str
    target: str | None
    results: tuple[str, ...]
    redefines: tuple[bool, ...]
    """Per result: whether it replaces a matched value of that name."""
    operands: tuple[tuple[str, bool], ...]
    """(name, splat): `%x`, or `%xs...` expanded."""
    properties: tuple[tuple[str, Evaluator], ...]
    attributes: tuple[tuple[str, Evaluator], ...]
    kwargs: tuple[tuple[str, Evaluator], ...]
    """Arguments of a new `aten.op` given by schema name."""
    result_types: tuple[Evaluator, ...] | None
    """None: each result has the type of the matched value it redefines."""
    line: int
    column: int
    filename: str | None = None
    """Where the statement is written, if not in the rule's own file (a value of an include)."""

    def build(self, values: Values, caps: Caps, provenance: Mapping[str, Attribute],
              location: Attribute) -> Operation:
        operands: list[SSAValue] = []
        for name, splat in self.operands:
            if splat:
                operands.extend(values[name])  # type: ignore[arg-type]
            else:
                operands.append(values[name])  # type: ignore[arg-type]
        properties = self._entries(self.properties, values, caps)
        attributes = self._entries(self.attributes, values, caps)
        if self.result_types is None:
            types = [values[name].type for name in self.results]  # type: ignore[union-attr]
        else:
            types = [self._type(evaluate, values, caps) for evaluate in self.result_types]
        for key, value in provenance.items():
            if key not in attributes and key not in properties:
                attributes[key] = value
        if self.target is not None:
            op = self._aten(operands, self._entries(self.kwargs, values, caps), types, attributes)
        else:
            try:
                op = self.op_class.create(operands=operands, result_types=types,
                                          properties=properties, attributes=attributes)
            except (ValueError, TypeError, VerifyException) as err:
                raise RuleFailure(self.line, self.column, f"cannot build {self.name}: {err}",
                                  self.filename) from None
        op.location = location  # type: ignore[assignment]
        return op

    def _type(self, evaluate: Evaluator, values: Values, caps: Caps) -> Attribute:
        type_ = evaluate(values, caps)
        if not isinstance(type_, TypeAttribute):
            raise RuleFailure(self.line, self.column,
                              f"a result type of {self.name} is not a type: {type_!r}", self.filename)
        return type_

    def _entries(self, entries: tuple[tuple[str, Evaluator], ...], values: Values,
                 caps: Caps) -> dict[str, Attribute]:
        """The entries whose expressions give something (None omits the entry)."""
        out: dict[str, Attribute] = {}
        for key, evaluate in entries:
            result = evaluate(values, caps)
            try:
                attribute = to_attribute(result)
            except TypeError as err:
                raise RuleFailure(self.line, self.column, f"{self.name} entry {key!r}: {err}",
                                  self.filename) from None
            if attribute is not None:
                out[key] = attribute
        return out

    def _aten(self, operands, kwargs, types, attributes) -> Operation:
        return AtenOp(self.target, operands, kwargs or None, types, attributes)


@dataclass(frozen=True)
class AliasStatement:
    """`%y = %x`: uses of the matched `%y` are given `%x`."""

    result: str
    source: str


Statement = OpBuilder | AliasStatement


# --------------------------------------------------------------------------
# Rules.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    values: Values
    caps: Caps
    ops: tuple[Operation, ...]
    """The matched ops, root first, then the others from the root upwards."""


@dataclass(eq=False)
class Rule:
    """A compiled rule: what it matches, when, and what it builds."""

    name: str
    benefit: int
    filename: str
    line: int
    column: int
    ops: tuple[OpMatcher, ...]
    """The match block in file order; the last is the root."""
    conditions: tuple[Callable[[Values, Caps], bool], ...]
    statements: tuple[Statement, ...]
    verify: bool = False
    provenance: str | None = None
    """`provenance %c`: the value whose defining op new ops take their provenance from first."""
    uses_target: bool = False
    """Whether a condition asks about the target (`target has F`)."""

    @property
    def root(self) -> str:
        """The root op name, `aten.op "overload"` for an ATen op (as `describe_op` prints it)."""
        root = self.ops[-1]
        return root.name if root.target is None else f'{root.name} "{root.target}"'

    @property
    def key(self) -> str | tuple[str, str]:
        """What `RulePattern` dispatches on."""
        root = self.ops[-1]
        return root.name if root.target is None else (root.name, root.target)

    def __repr__(self) -> str:
        return f"<Rule {self.name} ({self.root}) at {self.filename}:{self.line}:{self.column}>"

    # -- matching --

    def match(self, root: Operation, target: Any = None) -> Match | None:
        """The bindings when `root` and the ops above it match and the conditions hold.

        `target` (a `qir.target.Target`) answers `target has F`; None is the host."""
        values: Values = {TARGET: target} if self.uses_target else {}  # type: ignore[dict-item]
        caps: Caps = {}
        ops = self.ops
        if not ops[-1].match(root, values, caps):
            return None
        matched = [root]
        if len(ops) > 1 and not self._match_producers(matched, values, caps):
            return None
        try:
            for condition in self.conditions:
                if not condition(values, caps):
                    return None
        except RuleFailure as err:
            raise self._error(root, err) from None
        return Match(values, caps, tuple(matched))

    def _match_producers(self, matched: list[Operation], values: Values, caps: Caps) -> bool:
        """Find and match the ops before the root, each through a value a later op reads."""
        ops = self.ops
        for matcher in reversed(ops[:-1]):
            name, index = matcher.anchor  # type: ignore[misc]
            value = values[name]
            if not isinstance(value, OpResult) or value.index != index:
                return False
            op = value.op
            if op.name != matcher.name or any(op is m for m in matched):
                return False
            if not matcher.match(op, values, caps):
                return False
            matched.append(op)
        for op in matched[1:]:  # a matched op's results may only feed the match
            for result in op.results:
                for use in result.uses:
                    if not any(use.operation is m for m in matched):
                        return False
        return True

    # -- rewriting --

    def rewrite(self, match: Match, rewriter: PatternRewriter) -> None:
        """Build the replacement, redirect the redefined values, erase what is left unused.

        Everything a rule computes is computed before the IR changes: a function
        that fails leaves the IR as it was."""
        root = match.ops[0]
        values = dict(match.values)
        caps = match.caps
        first = values[self.provenance].op if self.provenance is not None else None  # type: ignore[union-attr]
        provenance, location = _provenance(match.ops, first)
        new_ops: list[Operation] = []
        replacements: list[tuple[SSAValue, SSAValue]] = []
        try:
            for statement in self.statements:
                if isinstance(statement, AliasStatement):
                    replacements.append((values[statement.result], values[statement.source]))  # type: ignore[arg-type]
                    values[statement.result] = values[statement.source]
                    continue
                op = statement.build(values, caps, provenance, location)
                new_ops.append(op)
                for name, redefines, result in zip(statement.results, statement.redefines, op.results):
                    if redefines:
                        old = values[name]
                        replacements.append((old, result))  # type: ignore[arg-type]
                        result.name_hint = old.name_hint  # type: ignore[union-attr]
                    elif SSAValue.is_valid_name(name) and not name.isdigit():
                        result.name_hint = name
                    values[name] = result
        except RuleFailure as err:
            raise self._error(root, err) from None
        point = InsertPoint.before(root)
        for op in new_ops:
            rewriter.insert(op, point)
        if self.verify:
            self._verify(new_ops, root, rewriter)
        new = set(new_ops)
        for old, value in replacements:
            rewriter.replace_uses_with_if(old, value, lambda use: use.operation not in new)
        rewriter.erase(root)
        for op in match.ops[1:]:
            if all(not result.uses for result in op.results):
                rewriter.erase(op)

    def _verify(self, new_ops: Sequence[Operation], root: Operation, rewriter: PatternRewriter) -> None:
        for op in new_ops:
            try:
                op.verify()
            except VerifyException as err:
                for built in reversed(new_ops):
                    rewriter.erase(built, safe_erase=False)
                raise OpError(root, f"rule {self.name} ({self.filename}:{self.line}:{self.column}) "
                                    f"built an invalid {op.name}: {err}") from None

    def _error(self, root: Operation, err: RuleFailure) -> OpError:
        where = f"{err.filename or self.filename}:{err.line}:{err.column}"
        return OpError(root, f"rule {self.name} ({where}): {err.message}")


def _provenance(ops: Sequence[Operation],
                first: Operation | None = None) -> tuple[dict[str, Attribute], Attribute]:
    """What new ops inherit: each provenance entry of `first` (the rule's `provenance %c`) or,
    where it has none, of the root, else of the nearest matched op that has one; and the
    location of the root, or, where the root has none (a `quant.qcast` that `convert` added),
    of the nearest matched op that has one."""
    provenance: dict[str, Attribute] = {}
    order = ops if first is None else (first, *ops)
    for key in PROVENANCE:
        for op in order:
            value = op.attributes.get(key)
            if value is not None:
                provenance[key] = value
                break
    location = next((op.location for op in ops if not isinstance(op.location, UnknownLoc)), ops[0].location)
    return provenance, location


# --------------------------------------------------------------------------
# The xDSL pattern.
# --------------------------------------------------------------------------


@dataclass(eq=False)
class RuleGroup:
    """The rules of one root, in trial order, with an index on one entry of the root.

    A backend writes many rules per root that differ in a literal entry
    (`post = none`, `post = "relu"`, `post = "hardtanh"`): trying each in turn would
    read that entry once per rule. The group picks the entry that most of its rules
    pin to a literal (or to `none`), reads it once per op, and tries only the rules
    that pin it to that value or do not constrain it, in the same order — the same
    first match, with fewer attempts."""

    rules: tuple[Rule, ...]
    key: str | None = None
    by_value: dict[Attribute | None, tuple[Rule, ...]] = field(default_factory=dict)
    unconstrained: tuple[Rule, ...] = ()
    read_entry: Callable[[Operation, str], Attribute | None] | None = None

    @staticmethod
    def of(rules: Sequence[Rule]) -> "RuleGroup":
        rules = tuple(rules)
        pinned: list[dict[str, Attribute | None]] = []
        counts: Counter[str] = Counter()
        for rule in rules:
            root = rule.ops[-1]
            values = {c.key: c.value for c in root.attrs if c.kind == ATTR_EQUAL}
            values.update({c.key: None for c in root.attrs if c.kind == ATTR_ABSENT})
            pinned.append(values)
            counts.update(values.keys())
        best = max(counts, key=lambda k: counts[k], default=None)  # first of the most pinned
        if best is None or counts[best] < 2:
            return RuleGroup(rules)
        free = tuple(r for r, values in zip(rules, pinned) if best not in values)
        by_value: dict[Attribute | None, tuple[Rule, ...]] = {}
        for values in pinned:
            if best in values and values[best] not in by_value:
                wanted = values[best]
                by_value[wanted] = tuple(r for r, v in zip(rules, pinned) if best not in v or v[best] == wanted)
        return RuleGroup(rules, best, by_value, free, rules[0].ops[-1].read_entry)

    def candidates(self, op: Operation) -> tuple[Rule, ...]:
        if self.key is None:
            return self.rules
        value = self.read_entry(op, self.key)  # type: ignore[misc]
        if type(value) is NoneAttr:
            value = None
        return self.by_value.get(value, self.unconstrained)


@dataclass(eq=False)
class RulePattern(RewritePattern):
    """Applies the first rule (by benefit, then file order) that matches an op.

    The rules are grouped by root: an op name, or (`aten.op`, overload). `counts`
    says how often each rule was applied by this pattern object."""

    index: Mapping[str | tuple[str, str], RuleGroup]
    counts: Counter[str] = field(default_factory=Counter)
    target: Any = None
    """The `qir.target.Target` that `target has F` asks about (None: the host)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        name = op.name
        if name == "aten.op":
            group = self.index.get((name, op.target.data))  # type: ignore[attr-defined]
        else:
            group = self.index.get(name)
        if group is None:
            return
        for rule in group.candidates(op):
            match = rule.match(op, self.target)
            if match is not None:
                rule.rewrite(match, rewriter)
                self.counts[rule.name] += 1
                return
