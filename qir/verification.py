"""Verifying a module as xDSL's `Operation.verify` does, with each op's definition compiled once.

xDSL verifies an IRDL op by interpreting its definition (`OpDef.verify`) every time: it
works out again, for each op, how its operands, results, regions and successors split among
the definition's variadic and single entries, which costs about 15 us an op before any
constraint is checked; the pass manager verifies every program it returns, 14,000 ops per
static flow (prepare, convert, lower) of 800 linear layers. Here each op class's definition
is turned once into a checker that does the same checks in the same order (as MLIR's ODS
generates a verifier per op rather than interpreting its definition): the operand and result
counts and constraints, no regions or successors where the definition has none, the
properties and attributes, the traits, then the op's own `verify_`. Ops whose definitions
split their operands among several variadic entries, or that have regions or successors (a
module's one `func.func`), are verified by xDSL's own `Operation.verify`, as are ops that are
not IRDL ops.

The structural checks of `Operation.verify`, `Block.verify` and `Region.verify` (no erased
operand, parent pointers, terminators, no empty block where a terminator is expected) are
made as there. This decides only that a module is valid: when any check fails, xDSL verifies
the module again, and its exception, with its message and the op it names, is the one raised.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from xdsl.ir import ErasedSSAValue, Operation, Region
from xdsl.irdl import VerificationContext
from xdsl.irdl.operations import (
    AttrSizedSegments,
    IRDLOperation,
    OpDef,
    OptAttributeDef,
    OptionalDef,
    OptPropertyDef,
    VariadicDef,
)
from xdsl.traits import IsTerminator, NoTerminator


class _Invalid(Exception):
    """A check failed: xDSL's verifier says which and how."""


def verify(module: Operation) -> None:
    """`module.verify()`: the same checks, the same exception when one fails."""
    try:
        _verify_op(module)
    except Exception:  # _Invalid, or what a verifier raised: xDSL's own verification reports it
        module.verify()


def _verify_op(op: Operation) -> None:
    for region in op.regions:
        _verify_region(region)
    _checker(type(op))(op)


def _verify_region(region: Region) -> None:
    """`Region.verify` and `Block.verify` (with the terminator check `Operation.verify` makes
    on each block's last op), each nested op checked."""
    single_block = len(region.blocks) == 1
    needs_terminator = region.parent is not None and not region.parent.has_trait(NoTerminator)
    terminated = len(region.blocks) > 1 or needs_terminator
    for block in region.blocks:
        if block.parent is not region:
            raise _Invalid
        last = block.last_op
        if last is None and single_block and needs_terminator:
            raise _Invalid
        for op in block.ops:
            if op.parent is not block:
                raise _Invalid
            if any(isinstance(operand, ErasedSSAValue) for operand in op.operands):
                raise _Invalid
            if op is last and terminated and not op.has_trait(IsTerminator):
                raise _Invalid
            _verify_op(op)


@functools.cache
def _checker(cls: type[Operation]) -> Callable[[Operation], None]:
    """How an op of class `cls` is verified once its regions are: its definition compiled,
    then its own `verify_`; xDSL's `Operation.verify` (without nested ops) where the
    definition is not compiled. An op class's definition is fixed when the class is made."""
    if not issubclass(cls, IRDLOperation):
        return _as_xdsl
    op_def = cls.get_irdl_definition()
    custom = _own_verifier(cls, op_def)
    generic = _compiled(op_def)
    if custom is _UNKNOWN or generic is None:
        return _as_xdsl
    if custom is None:
        return generic

    def check(op: Operation) -> None:
        generic(op)
        custom(op)

    return check


def _as_xdsl(op: Operation) -> None:
    op.verify(verify_nested_ops=False)


_UNKNOWN = object()


def _own_verifier(cls: type[IRDLOperation], op_def: OpDef):
    """The `verify_` the op class defines itself (None if it defines none), which xDSL's
    `irdl_op_definition` wraps after its definition's check; `_UNKNOWN` when `cls.verify_` is
    not that wrapper (then xDSL verifies the op)."""
    wrapper = cls.verify_
    cells = dict(zip(getattr(wrapper, "__code__", None) and wrapper.__code__.co_freevars or (),
                     getattr(wrapper, "__closure__", None) or ()))
    if (getattr(wrapper, "__qualname__", "") != "get_accessors_from_op_def.<locals>.verify_"
            or "op_def" not in cells or cells["op_def"].cell_contents is not op_def
            or not set(cells) <= {"op_def", "custom_verify"}):
        return _UNKNOWN
    custom = cells["custom_verify"].cell_contents if "custom_verify" in cells else None
    return None if custom is Operation.verify_ else custom


def _compiled(op_def: OpDef) -> Callable[[Operation], None] | None:
    """`op_def.verify` for a definition without regions, successors or attribute-sized
    segments whose operands and results each have at most one variadic entry; None for the
    others."""
    if op_def.regions or op_def.successors or any(isinstance(o, AttrSizedSegments) for o in op_def.options):
        return None
    operand_types = _split(op_def.operands)
    result_types = _split(op_def.results)
    if operand_types is None or result_types is None:
        return None
    operands = [(arg_def.constr, index) for index, (_, arg_def) in enumerate(op_def.operands)]
    results = [(arg_def.constr, index) for index, (_, arg_def) in enumerate(op_def.results)]
    properties = [(name, prop.constr, isinstance(prop, OptPropertyDef)) for name, prop in op_def.properties.items()]
    attributes = [(name, attr.constr, isinstance(attr, OptAttributeDef)) for name, attr in op_def.attributes.items()]
    defined = op_def.properties.keys()
    traits = op_def.traits

    def check(op: Operation) -> None:
        context = VerificationContext()
        types = operand_types([operand.type for operand in op.operands])
        for constraint, index in operands:
            constraint.verify(types[index], context)
        types = result_types([result.type for result in op.results])
        for constraint, index in results:
            constraint.verify(types[index], context)
        if op.regions or op.successors:
            raise _Invalid
        _check_entries(op.properties, properties, context)
        if any(name not in defined for name in op.properties):
            raise _Invalid
        _check_entries(op.attributes, attributes, context)
        for trait in traits:
            trait.verify(op)

    return check


def _check_entries(present: dict, entries: Sequence[tuple], context: VerificationContext) -> None:
    """The properties or attributes `present` against their definitions `(name, constraint, optional)`."""
    for name, constraint, optional in entries:
        if name in present:
            constraint.verify(present[name], context)
        elif not optional:
            raise _Invalid


def _split(defs: Sequence[tuple[str, object]]) -> Callable[[list], list[tuple]] | None:
    """How a list of operand (result) types splits among `defs`, one tuple of types per entry,
    as the definition's accessors split it (`_Invalid` for a list of the wrong length); None
    when two or more entries are variadic."""
    variadic = [index for index, (_, arg_def) in enumerate(defs) if isinstance(arg_def, VariadicDef)]
    count = len(defs)
    if not variadic:
        def split(types: list) -> list[tuple]:
            if len(types) != count:
                raise _Invalid
            return [(t,) for t in types]
        return split
    if len(variadic) > 1:
        return None
    (at,) = variadic
    optional = isinstance(defs[at][1], OptionalDef)

    def split_variadic(types: list) -> list[tuple]:
        extra = len(types) - (count - 1)  # how many the variadic entry holds
        if extra < 0 or (optional and extra > 1):
            raise _Invalid
        return [(t,) for t in types[:at]] + [tuple(types[at:at + extra])] + [(t,) for t in types[at + extra:]]

    return split_variadic
