"""propagate-annotations: decide which values share quantization parameters.

Before, annotations say what each op wants (`#obs.spec`, `#obs.shared<operand 0>`,
`#obs.fixed`, `#obs.derived`). After, every entry is a concrete spec with a
group number, and `#obs.shared` is gone:

    %v = aten.op "view.default"(%r, [1, -1]) {qout = [#obs.shared<operand 0>]}
  becomes
    %v = aten.op "view.default"(%r, [1, -1]) {qout = [#obs.spec<u8[0:255], affine, histogram, group 3>]}

The places a spec can stand are the nodes of an undirected graph: the output
of a value ("out", value) and each annotated input edge ("in", op, index).
Shared specs are edges of that graph. An input edge also joins its
producer's output when both want the same spec, which is how consecutive ops
come to share one observer (PT2E's rule), and when the producer's range is fixed
(a softmax feeding a matmul: the matmul reads it with the softmax's parameters,
where PT2E would observe and requantize it again). Input edges reading one
constant with the same spec are joined too (a layer applied twice, ALBERT's
shared layers): the weight is observed and stored once. A group is a connected
component.

A component holding two different concrete specs is a conflict. It is
resolved deterministically: a fixed-range spec wins (the op's range demands
it), otherwise the first spec in program order; each conflict is counted and
reported with a warning naming the op, never silently.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from networkx.utils import UnionFind
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Attribute, Operation, SSAValue

from qir.dialects.aten import ParamOp
from qir.dialects.obs import DerivedSpecAttr, FixedQParamsAttr, QuantSpecAttr, SharedSpecAttr
from qir.errors import OpError, describe_op
from qir.pass_manager import QirPass, count
from qir.quantizer.base import annotation, set_annotation

Node = tuple[Any, ...]


def _takes_fixed(produced: Attribute, wanted: Attribute) -> bool:
    """Whether an input wanting `wanted` can read a value quantized with the fixed `produced`."""
    return (isinstance(produced, FixedQParamsAttr) and isinstance(wanted, QuantSpecAttr)
            and wanted.channel_axis is None and (produced.storage, produced.qmin, produced.qmax)
            == (wanted.storage, wanted.qmin, wanted.qmax))


def _plain(spec: Attribute) -> Attribute:
    """The spec without its group, for comparing what two places want."""
    return spec.with_group(None) if hasattr(spec, "with_group") else spec


@dataclass(frozen=True)
class PropagateAnnotations(QirPass):
    name = "propagate-annotations"
    requires = ("annotated",)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        ops = [o for o in op.walk() if "qin" in o.attributes or "qout" in o.attributes]
        qins = {o: annotation(o, "qin") for o in ops}
        qouts = {o: annotation(o, "qout") for o in ops}
        links = _Links()
        order: dict[Node, int] = {}
        concrete: dict[Node, Attribute] = {}
        derived: list[tuple[Operation, int, DerivedSpecAttr]] = []

        def add(node: Node, spec: Attribute | None) -> None:
            if node not in order:
                order[node] = links.add()
            if spec is not None:
                concrete[node] = spec

        def operand_node(o: Operation, index: int) -> Node:
            if index >= len(o.operands):
                raise OpError(o, f"shared spec refers to operand {index}, the op has {len(o.operands)}")
            if qins[o][index] is not None:
                return ("in", o, index)
            node = ("out", o.operands[index])
            add(node, None)
            return node

        def shared_target(o: Operation, spec: SharedSpecAttr) -> Node:
            if spec.kind.data == "operand":
                return operand_node(o, spec.index.data)
            if spec.index.data >= len(o.results):
                raise OpError(o, f"shared spec refers to result {spec.index.data}, the op has {len(o.results)}")
            node = ("out", o.results[spec.index.data])
            add(node, None)
            return node

        # Nodes first (in program order, so group numbers are deterministic), then shared links.
        for o in ops:
            for i, spec in enumerate(qins[o]):
                if isinstance(spec, DerivedSpecAttr):
                    derived.append((o, i, spec))
                elif spec is not None:
                    add(("in", o, i), None if isinstance(spec, SharedSpecAttr) else _plain(spec))
            for i, spec in enumerate(qouts[o]):
                if spec is not None:
                    add(("out", o.results[i]), None if isinstance(spec, SharedSpecAttr) else _plain(spec))
        for o in ops:
            for entries, make in ((qouts[o], lambda i: ("out", o.results[i])), (qins[o], lambda i: ("in", o, i))):
                for i, spec in enumerate(entries):
                    if isinstance(spec, SharedSpecAttr):
                        links.link(order[make(i)], order[shared_target(o, spec)])

        # An input edge joins its producer's output when their components want the same spec, or
        # when the producer's range is fixed (sigmoid, softmax) and the edge only asks for a plain
        # per-tensor spec of the same storage: the consumer takes any parameters, so the fixed
        # ones serve it as they are, with no requantization between.
        spec_of = self._component_specs(links, concrete, order, ctx)
        for node in list(order):
            if node[0] != "in":
                continue
            producer = ("out", node[1].operands[node[2]])
            if producer not in order:
                continue
            if None in (spec_of(producer), spec_of(node)) or spec_of(producer) == spec_of(node):
                links.link(order[node], order[producer])
            elif _takes_fixed(spec_of(producer), spec_of(node)) and not links.is_linked(order[node]):
                concrete.pop(node, None)
                links.link(order[node], order[producer])

        # Input edges reading one constant with the same spec are one group: a layer applied
        # twice, or layers sharing weights (ALBERT's), store their weight quantized once.
        readers: dict[tuple[SSAValue, Attribute], Node] = {}
        for node in order:
            if node[0] != "in":
                continue
            value = node[1].operands[node[2]]
            if isinstance(value.owner, ParamOp) and spec_of(node) is not None:
                first = readers.setdefault((value, spec_of(node)), node)
                if first is not node:
                    links.link(order[node], order[first])

        spec_of = self._component_specs(links, concrete, order, ctx)
        nodes = list(order)
        grouped: dict[Node, Attribute] = {}
        """Each node's spec with its group number: one attribute per group, shared by its nodes."""
        next_group = 0
        for component in links.components():
            spec = spec_of(nodes[component[0]])
            if spec is None:
                continue
            spec = spec.with_group(next_group)
            next_group += 1
            for n in component:
                grouped[nodes[n]] = spec

        for o in ops:
            qout = [grouped.get(("out", r)) if e is not None else None for r, e in zip(o.results, qouts[o])]
            qin = [grouped.get(("in", o, i)) if e is not None and not isinstance(e, DerivedSpecAttr) else e
                   for i, e in enumerate(qins[o])]
            set_annotation(o, "qout", qout)
            set_annotation(o, "qin", qin)
        for o, i, spec in derived:
            qin = annotation(o, "qin")
            qin[i] = spec.with_group(next_group)
            next_group += 1
            set_annotation(o, "qin", qin)
        count(ctx, "groups", next_group)

    @staticmethod
    def _component_specs(links: _Links, concrete: dict[Node, Attribute], order: dict[Node, int], ctx):
        """A function node → the one concrete spec of its component (conflicts resolved)."""
        nodes = list(order)
        chosen: dict[Node, Attribute | None] = {}
        for component in links.components():
            members = [nodes[n] for n in component]
            specs = [concrete[n] for n in members if n in concrete]
            spec = None
            if specs:
                fixed = [s for s in specs if isinstance(s, FixedQParamsAttr)]
                spec = fixed[0] if fixed else specs[0]
                losers = [n for n in members if n in concrete and concrete[n] != spec]
                if losers:
                    count(ctx, "conflicts")
                    where = losers[0][1] if losers[0][0] == "in" else losers[0][1].owner
                    warnings.warn(
                        f"propagate-annotations: values that must share quantization parameters "
                        f"were given different specs; using {spec} for {describe_op(where)}",
                        stacklevel=2)
            for n in members:
                chosen[n] = spec
        return lambda node: chosen.get(node)


class _Links:
    """The nodes, numbered in program order, and the links between them, kept in networkx's
    union-find: its sets are the graph's connected components, found without building a graph
    of thousands of nodes twice."""

    def __init__(self) -> None:
        self._sets = UnionFind()
        self._count = 0
        self._linked: set[int] = set()

    def add(self) -> int:
        """A new node: its number."""
        self._count += 1
        return self._count - 1

    def link(self, a: int, b: int) -> None:
        self._linked.update((a, b))
        self._sets.union(a, b)

    def is_linked(self, node: int) -> bool:
        """Whether any link touches `node` (its degree is not 0)."""
        return node in self._linked

    def components(self) -> list[list[int]]:
        """Each component's nodes in program order, the components in the order of their
        first nodes."""
        members: dict[int, list[int]] = {}
        for node in range(self._count):
            members.setdefault(self._sets[node], []).append(node)
        return list(members.values())
