"""`cse`: one computation written twice is computed once.

A model often computes one thing twice (`x.relu() + x.relu()`, a mask or a position
table rebuilt in every layer, a parameter read twice), and passes leave duplicates
behind (`canonicalize` turns two views of one tensor into the tensor itself, so what
reads them becomes equal; two lowered layers prepack one weight). Each duplicate
costs an observer and a quantize/dequantize pair, or a kernel call. Before:

    %w  = aten.param parameter "fc.weight" : tensor<4x4xf32>
    %w2 = aten.param parameter "fc.weight" : tensor<4x4xf32>
    %y  = aten.op "linear.default"(%x, %w) : (...) -> tensor<2x4xf32>
    %y2 = aten.op "linear.default"(%x, %w2) : (...) -> tensor<2x4xf32>
    %r1 = aten.op "relu.default"(%y) : (...) -> tensor<2x4xf32>
    %r2 = aten.op "relu.default"(%y2) : (...) -> tensor<2x4xf32>
    %s  = aten.op "add.Tensor"(%r1, %r2) : (...) -> tensor<2x4xf32>

After:

    %w  = aten.param parameter "fc.weight" : tensor<4x4xf32>
    %y  = aten.op "linear.default"(%x, %w) : (...) -> tensor<2x4xf32>
    %r1 = aten.op "relu.default"(%y) : (...) -> tensor<2x4xf32>
    %s  = aten.op "add.Tensor"(%r1, %r1) : (...) -> tensor<2x4xf32>

Two ops of one block are one when they have the same name, properties (the ATen
target and arguments, the parameter's name and kind), attributes, operands and result
types, and compute their results and nothing else (`qir.aliasing.removable`: no random
op, no in-place write, no training-mode batch norm, no runtime assert, no
`aten.param_update`). The later one is replaced by the earlier one, counted as
`duplicate`. This is MLIR's and xDSL's `cse`, with three rules of qir's:

* attributes compare exactly (`attr_key`): `#aten.dtype<float32>` is not
  `#aten.dtype<float16>`, `0.0` is not `-0.0`, `1` is not `1.0`;
* provenance is identity: two identical ops from different modules (`module`
  attributes) stay two, so `set_module_name` still sees both;
* an op reading or giving a tensor some op writes in place (or that `aten.param_update`
  writes back) is never merged: its value may change between the two
  (`qir.aliasing.Mutations`).

Each block is its own scope, so no dominance question arises. Numerics never change.
Run it after `canonicalize` (`canonicalize,cse`), which exposes duplicates.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Attribute, Block, Data, Operation, ParametrizedAttribute
from xdsl.rewriter import Rewriter
from xdsl.traits import IsTerminator

from qir.aliasing import Mutations, removable
from qir.pass_manager import QirPass, count


def attr_key(attr: Attribute) -> Hashable:
    """A hashable key equal exactly when two attributes are: by name and parameters, all the way down.

    xDSL compares attributes with their dataclass `__eq__`, which is only as
    good as each attribute's fields: the aten enum attributes (`#aten.dtype`,
    `#aten.memory_format`, ...) declare their parameter on a base class, so
    all of them compare equal. Floats compare by bits (0.0 is not -0.0)."""
    if isinstance(attr, ParametrizedAttribute):
        return (attr.name, tuple(attr_key(p) for p in attr.parameters))
    if isinstance(attr, Data):
        return (attr.name, _data_key(attr.data))
    return (type(attr).__qualname__, repr(attr))


def _data_key(data: object) -> Hashable:
    if isinstance(data, Attribute):
        return attr_key(data)
    if isinstance(data, float):
        return ("float", struct.pack("<d", data))
    if isinstance(data, tuple | list):
        return tuple(_data_key(d) for d in data)
    if isinstance(data, Mapping):
        return tuple(sorted((k, _data_key(v)) for k, v in data.items()))
    try:
        hash(data)
    except TypeError:
        return repr(data)
    return data


def op_key(op: Operation) -> Hashable:
    """What makes two ops the same computation: name, properties, attributes, operands, result types."""
    return (
        op.name,
        tuple(sorted((k, attr_key(v)) for k, v in op.properties.items())),
        tuple(sorted((k, attr_key(v)) for k, v in op.attributes.items())),
        tuple(op.operands),
        tuple(attr_key(r.type) for r in op.results),
    )


def _cheap_key(op: Operation) -> Hashable:
    """Equal for any two ops `op_key` calls equal (and for a few more)."""
    strings = tuple(sorted((k, v.data) for k, v in op.properties.items() if isinstance(v, StringAttr)))
    return (op.name, tuple(op.operands), strings)


def _merge_block(ctx: Context, mutations: Mutations, block: Block) -> None:
    """Replace each pure op of `block` by an identical earlier one, in program order (so what
    reads a merged duplicate is found a duplicate in turn)."""
    # Ops are bucketed by a cheap key first (name, operands, string properties such as the
    # ATen target or the parameter name); the exact key, which walks every attribute, is
    # computed only for ops that share a bucket: in a real model, few do.
    buckets: dict[Hashable, list[Operation]] = {}
    keys: dict[Operation, Hashable] = {}

    def key_of(o: Operation) -> Hashable:
        if o not in keys:
            keys[o] = op_key(o)
        return keys[o]

    for op in list(block.ops):
        if op.has_trait(IsTerminator) or not removable(op):
            continue
        if any(mutations.written(v) for v in (*op.operands, *op.results)):
            continue  # the value may change between the two: not a duplicate
        bucket = buckets.setdefault(_cheap_key(op), [])
        existing = next((other for other in bucket if key_of(other) == key_of(op)), None) if bucket else None
        if existing is None:
            bucket.append(op)
            continue
        Rewriter.replace_op(op, [], list(existing.results))
        count(ctx, "duplicate")


@dataclass(frozen=True)
class CommonSubexpressionElimination(QirPass):
    """Merges identical pure ops of a block (see the module docstring for the rules)."""

    name = "cse"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        mutations = Mutations.of(op)
        for block in _blocks(op):
            _merge_block(ctx, mutations, block)


def _blocks(op: Operation) -> list[Block]:
    """Every block nested in `op`, outer ones first: only ops with regions are looked into
    (xDSL's `walk` visits all 5,600 ops of a converted 3200-node model to find its two blocks)."""
    found = [block for region in op.regions for block in region.blocks]
    for block in list(found):
        for inner in block.ops:
            if inner.regions:
                found.extend(_blocks(inner))
    return found
