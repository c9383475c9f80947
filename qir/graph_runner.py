"""Running an FX graph node by node, for the first calls of a module, before its code exists.

A `GraphModule` runs Python code generated from its graph: torch writes one line per node and
compiles it, which on the 4,000-node calibration module of a 3,200-node model takes about
0.1 s, longer than calibrating it on a batch. A module run a few times (a calibration batch or
two, a check of a lowered module's outputs) pays that for little. `GraphRunner` runs the same
graph without generating code: the nodes are read once into a list of steps, and each call
walks the steps, calling each node's target on the values of its arguments, as the generated
code does and in the same order, releasing each value after its last reader as the generated
code does. `qir.emitter.QirModule` runs its first calls this way and generates its code when a
module keeps being called (see `INTERPRETED_CALLS`).

Only the graphs whose generated code this reproduces exactly are run: inputs bound to the
forward's parameters and flattened by the graph's pytree spec (or not flattened), and
`placeholder`, `get_attr`, `call_function`, `call_method`, `call_module` and `output` nodes.
`GraphRunner.of` returns None for any other (a placeholder with a default, another code
generator), and the module generates its code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from operator import itemgetter
from typing import Any

import torch.fx as fx
import torch.fx._pytree as fx_pytree
import torch.utils._pytree as pytree
from torch.fx.graph import CodeGen, _PyTreeCodeGen

INTERPRETED_CALLS = 2
"""The calls a `QirModule` runs through its `GraphRunner` before generating its code. On the
3,200-node chain's calibration module (4,000 nodes; AMD EPYC, `bench/flow_speed.py`) generating
and compiling the code costs about 0.1 s, and a call through the runner about 5 ms more than
through the code: a module run once or twice (one calibration batch, one check of a lowered
module) never generates code, and one run more often loses at most those two calls' 10 ms."""


class _Ref:
    """An argument that is the value of node `index`."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class GraphRunner:
    """A graph's nodes as steps, run on the values of its inputs (see the module docstring)."""

    def __init__(self, graph: fx.Graph, names: Sequence[str], flatten: Callable[[tuple], Sequence[Any]],
                 unflatten: Callable[[Any], Any]) -> None:
        self.names = tuple(names)
        """The generated forward's parameters (after `self`)."""
        self._flatten = flatten
        self._unflatten = unflatten
        nodes = list(graph.nodes)
        index = {node: i for i, node in enumerate(nodes)}
        last_use: dict[int, int] = {}
        for i, node in enumerate(nodes):
            if not node.users:
                last_use[i] = i  # a value nothing reads (an input check's) goes at once
            for used in node.all_input_nodes:
                last_use[index[used]] = i
        released: list[list[int]] = [[] for _ in nodes]
        for value, reader in last_use.items():
            released[reader].append(value)
        self._steps: list[tuple] = []
        self._placeholders: list[int] = []
        self._output: Any = None
        for i, node in enumerate(nodes):
            if node.op == "placeholder":
                self._placeholders.append(i)
                continue
            if node.op == "output":
                self._output = _template(node.args[0], index)
                continue
            self._steps.append((i, _step(node, index), tuple(released[i])))
        self.size = len(nodes)

    @classmethod
    def of(cls, module: fx.GraphModule) -> GraphRunner | None:
        """The runner of `module`'s graph, or None when its generated code takes inputs or gives
        outputs in a way the runner does not reproduce."""
        graph = module.graph
        placeholders = [node for node in graph.nodes if node.op == "placeholder"]
        if any(node.op not in _OPS for node in graph.nodes) or any(
                node.args or str(node.target).startswith("*") for node in placeholders):
            return None  # a default value, variadic inputs, a kind of node the code handles alone
        codegen = graph._codegen
        if type(codegen) is CodeGen or (type(codegen) is _PyTreeCodeGen and codegen.pytree_info is None):
            return cls(graph, [node.target for node in placeholders], lambda args: args, lambda out: out)
        if type(codegen) is not _PyTreeCodeGen:
            return None
        info = codegen.pytree_info
        if info.orig_args[:1] == ["self"] or (placeholders and info.in_spec is None):
            return None
        out_spec = info.out_spec  # the generated code's return statement (`generate_output`)
        unflatten = (lambda out: pytree.tree_unflatten(out, out_spec)) if out_spec else (lambda out: out)
        return cls(graph, info.orig_args, _flattener(info, bool(placeholders)), unflatten)

    def inputs_of(self, args: tuple, kwargs: dict) -> Sequence[Any] | None:
        """The graph's inputs given the forward's arguments, bound to its parameters as Python
        binds them; None when they do not fit (the generated code then says how)."""
        if kwargs:
            rest = self.names[len(args):]
            if set(kwargs) != set(rest):
                return None
            args = (*args, *(kwargs[name] for name in rest))
        if len(args) != len(self.names):
            return None
        try:
            flat = self._flatten(args)
        except Exception:  # noqa: BLE001 - the generated code raises it again, as it words it
            return None
        return flat if len(flat) == len(self._placeholders) else None

    def run(self, module: fx.GraphModule, inputs: Sequence[Any]) -> Any:
        """What `module`'s generated code returns for the graph's `inputs` (`inputs_of`)."""
        env: list[Any] = [None] * self.size
        for i, value in zip(self._placeholders, inputs):
            env[i] = value
        for i, step, released in self._steps:
            env[i] = step(env, module)
            for value in released:
                env[value] = None
        return self._unflatten(_fill(self._output, env))


_OPS = frozenset({"placeholder", "get_attr", "call_function", "call_method", "call_module", "output"})


def _step(node: fx.Node, index: dict[fx.Node, int]) -> Callable[[list, fx.GraphModule], Any]:
    """`node` as a function of the values so far and the module, which computes its value."""
    target = node.target
    if node.op == "get_attr":
        atoms = target.split(".")
        return lambda env, module: _fetch(module, atoms)
    args, kwargs = _template(tuple(node.args), index), _template(dict(node.kwargs), index)
    read = _reader(args)
    if _holds_ref(kwargs):
        def call(env: list, function: Callable) -> Any:
            return function(*read(env), **_fill(kwargs, env))
    elif kwargs:
        def call(env: list, function: Callable) -> Any:
            return function(*read(env), **kwargs)
    else:
        def call(env: list, function: Callable) -> Any:
            return function(*read(env))
    if node.op == "call_function":
        return lambda env, module: call(env, target)
    if node.op == "call_module":
        atoms = target.split(".")
        return lambda env, module: call(env, _fetch(module, atoms))
    return lambda env, module: call(env, partial(_call_method, target))  # call_method


def _reader(args: tuple) -> Callable[[list], Sequence[Any]]:
    """The arguments of a call, read from the values so far: the values of its node arguments
    at their places among its constants. Most nodes only read values of nodes, or constants
    beside them: the per-node cost of this read is what the runner adds to the generated code."""
    if any(not isinstance(arg, _Ref) and _holds_ref(arg) for arg in args):
        return lambda env: _fill(args, env)  # node values inside a list or a tuple
    refs = tuple((position, arg.index) for position, arg in enumerate(args) if isinstance(arg, _Ref))
    if len(refs) == len(args) == 1:
        only = refs[0][1]
        return lambda env: (env[only],)
    if len(refs) == len(args):
        return itemgetter(*(value for _, value in refs)) if args else (lambda env: ())
    constants = list(args)

    def read(env: list) -> list:
        values = constants.copy()
        for position, value in refs:
            values[position] = env[value]
        return values

    return read


def _holds_ref(template: Any) -> bool:
    if isinstance(template, _Ref):
        return True
    if isinstance(template, tuple | list):
        return any(_holds_ref(item) for item in template)
    if isinstance(template, dict):
        return any(_holds_ref(value) for value in template.values())
    if isinstance(template, slice):
        return any(_holds_ref(part) for part in (template.start, template.stop, template.step))
    return False


def _call_method(name: str, args: tuple, kwargs: dict) -> Any:
    self_arg, *rest = args
    return getattr(self_arg, name)(*rest, **kwargs)


def _flattener(info, has_inputs: bool) -> Callable[[tuple], Sequence[Any]]:
    """The graph's inputs from the forward's positional arguments, as `_PyTreeCodeGen`'s code
    binds them (`gen_var_bindings`): flattened by the input spec, the arguments after the
    positional ones the spec's keywords."""
    if not has_inputs:
        return lambda args: ()
    in_spec = info.in_spec
    if (in_spec.type is tuple and in_spec.num_children == 2 and in_spec.child(0).type is tuple
            and in_spec.child(1).type is dict):
        count, keys = in_spec.child(0).num_children, in_spec.child(1).context
        return lambda args: fx_pytree.tree_flatten_spec((list(args[:count]), dict(zip(keys, args[count:]))),
                                                        in_spec)
    return lambda args: fx_pytree.tree_flatten_spec(list(args), in_spec)


def _template(arg: Any, index: dict[fx.Node, int]) -> Any:
    """`arg` with each node replaced by a `_Ref` to its value's slot, and the containers of
    node arguments as the generated code writes them (lists, tuples, dicts, slices)."""
    if isinstance(arg, fx.Node):
        return _Ref(index[arg])
    if isinstance(arg, tuple) and hasattr(arg, "_fields"):
        return type(arg)(*(_template(item, index) for item in arg))
    if isinstance(arg, tuple):
        return tuple(_template(item, index) for item in arg)
    if isinstance(arg, list):
        return [_template(item, index) for item in arg]
    if isinstance(arg, dict):
        return {key: _template(value, index) for key, value in arg.items()}
    if isinstance(arg, slice):
        return slice(_template(arg.start, index), _template(arg.stop, index), _template(arg.step, index))
    return arg


def _fill(template: Any, env: list[Any]) -> Any:
    """`template` with each `_Ref` replaced by its value, in containers of the same types."""
    if isinstance(template, _Ref):
        return env[template.index]
    if type(template) is tuple or type(template) is list:
        return type(template)(_fill(item, env) for item in template)
    if type(template) is dict:
        return {key: _fill(value, env) for key, value in template.items()}
    if isinstance(template, tuple) and hasattr(template, "_fields"):  # a named tuple
        return type(template)(*(_fill(item, env) for item in template))
    if isinstance(template, slice):
        return slice(_fill(template.start, env), _fill(template.stop, env), _fill(template.step, env))
    return template


def _fetch(module: fx.GraphModule, atoms: list[str]) -> Any:
    """The attribute at the dotted path `atoms` of `module`, read as the generated code reads it."""
    value: Any = module
    for atom in atoms:
        value = getattr(value, atom)
    return value
