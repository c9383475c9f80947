"""From a qir `Program` to a `torch.fx.GraphModule` called exactly like the exported model.

Every op kind has an emission rule. qir's own dialects (aten, quant, obs, ref) register theirs
by op name with `emits("aten.op")`, in modules imported when first needed; a backend hands its
own over as an `Emission` table (`qir.lowering.Backend(emission=...)`), found through the
registry for the op names its dialects define. So the emitter itself never changes when a
dialect is added. The module's inputs and outputs follow the pytree specs the importer kept, so
`gm(*args, **kwargs)` takes and returns what the original `nn.Module` did.
"""

from __future__ import annotations

import copy
import importlib
import keyword
from operator import getitem as _getitem
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
import torch.fx as fx
from torch.fx._lazy_graph_module import _LazyGraphModule
from torch.fx.graph import _PyTreeCodeGen, _PyTreeInfo
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, StringAttr
from xdsl.ir import Attribute, Operation, SSAValue

from qir.dialects.aten import (
    AtenOp,
    ParamOp,
    ParamUpdateOp,
    resolve_overload,
    resolve_python_target,
    schema_of,
)
from qir.errors import QirError
from qir.gc_pause import paused_gc
from qir.graph_runner import INTERPRETED_CALLS, GraphRunner
from qir.pytree_text import spec_from_text
from qir.torch_values import torch_argument

EmitRule = Callable[["Emitter", Operation], None]
_RULES: dict[str, EmitRule] = {}
FoldRule = Callable[["Emitter", Operation, list], Any]
_FOLDS: dict[str, FoldRule] = {}


def emits(op_name: str) -> Callable[[EmitRule], EmitRule]:
    """Register how ops named `op_name`, of one of qir's own dialects, become FX nodes (a
    backend's ops are emitted by the `Emission` it hands over)."""

    def register(rule: EmitRule) -> EmitRule:
        _RULES[op_name] = rule
        return rule

    return register


def folds(op_name: str) -> Callable[[FoldRule], FoldRule]:
    """Register how an op named `op_name` is evaluated while emitting, when its operands are
    constants: `rule(emitter, op, operand_tensors) -> tensor`. Emission rules that do work on
    weights once (prepacking) see through such ops with `Emitter.constant`."""

    def register(rule: FoldRule) -> FoldRule:
        _FOLDS[op_name] = rule
        return rule

    return register


class Emission(Mapping[str, EmitRule]):
    """How a backend's kernel ops become torch calls: a mapping op name → emission rule, and
    `folds`, op name → fold rule (see `folds`), handed over as `Backend(emission=...)`.

    Build it from mappings, or with its decorators in the backend's emission module:

        EMISSION = Emission()

        @EMISSION.rule("mykernels.bmm")
        def _bmm(em: Emitter, op) -> None:
            em.bind(op, em.call(torch.ops.mykernels.bmm.default, (em.node(op.lhs), ...)))

    A rule is `rule(emitter, op)`: it maps the op's results to FX nodes (`Emitter.bind`). Naming
    an op twice is an error, unless `replace=True` says it overrides on purpose (a backend that
    reuses a shared table and emits one op its own way)."""

    def __init__(self, rules: Mapping[str, EmitRule] | None = None, folds: Mapping[str, FoldRule] | None = None):
        self._rules: dict[str, EmitRule] = dict(rules or {})
        self.folds: dict[str, FoldRule] = dict(folds or {})

    def __getitem__(self, op_name: str) -> EmitRule:
        return self._rules[op_name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __repr__(self) -> str:
        return f"Emission({sorted(self._rules)}, folds={sorted(self.folds)})"

    def rule(self, *op_names: str, replace: bool = False) -> Callable[[EmitRule], EmitRule]:
        """Decorator: `rule` emits the ops named `op_names`."""
        return self._register(self._rules, "an emission rule", op_names, replace)

    def fold(self, *op_names: str, replace: bool = False) -> Callable[[FoldRule], FoldRule]:
        """Decorator: `rule(emitter, op, operand_tensors) -> tensor` evaluates the ops named
        `op_names` while emitting, when their operands are constants (`Emitter.constant`)."""
        return self._register(self.folds, "a fold rule", op_names, replace)

    @staticmethod
    def _register(table: dict, what: str, op_names: tuple[str, ...], replace: bool):
        def register(rule):
            for op_name in op_names:
                if op_name in table and not replace and table[op_name] is not rule:
                    raise ValueError(f"{op_name} has {what} already ({table[op_name].__qualname__}); "
                                     "pass replace=True to override it")
                table[op_name] = rule
            return rule

        return register


# Modules holding the emission rules of qir's own dialects, imported when first needed.
_RULE_MODULES = {"quant": "qir.emit_quant", "obs": "qir.emit_quant", "ref": "qir.emit_ref",
                 "custom": "qir.custom_modules"}


def _core_rule(op_name: str) -> EmitRule | None:
    rule = _RULES.get(op_name)
    if rule is None:
        module = _RULE_MODULES.get(op_name.split(".")[0])
        if module is not None:
            importlib.import_module(module)
            rule = _RULES.get(op_name)
    return rule


def _is_core(op_name: str) -> bool:
    """Whether `op_name` is an op of one of qir's own dialects (or has no dialect prefix)."""
    from qir.context import QIR_DIALECTS

    return "." not in op_name or op_name.split(".")[0] in QIR_DIALECTS


def rule_for(op_name: str, backend: str | None = None) -> EmitRule | None:
    """The emission rule of ops named `op_name`: qir's own (`emits`), else the one of the backend
    whose dialect defines the op (`backend`, the one a lowered program names, is asked first),
    found through the registry: the core never imports a backend."""
    rule = _core_rule(op_name)
    if rule is None and not _is_core(op_name):
        from qir.registry import backend_emission

        rule = backend_emission(op_name, backend).get(op_name)
    return rule


def fold_for(op_name: str, backend: str | None = None) -> FoldRule | None:
    """The fold rule of ops named `op_name` (see `folds`, `Emission.fold`), or None."""
    rule = _FOLDS.get(op_name)
    if rule is None and not _is_core(op_name):
        from qir.registry import backend_emission

        rule = backend_emission(op_name, backend).folds.get(op_name)
    return rule


def emit(program) -> fx.GraphModule:
    """The Program as an `fx.GraphModule` (parameters registered, pytree calling convention).

    A lowered program's backend may finish the module (`Backend.finalize`: the inductor
    backend compiles it)."""
    _check_host_features(program)
    with paused_gc():
        gm = Emitter(program).run()
    backend = program.module.attributes.get("qir.backend")
    if isinstance(backend, StringAttr):
        from qir.registry import get_backend

        finalize = get_backend(backend.data).finalize
        if finalize is not None:
            gm = finalize(gm)
    return gm


def _check_host_features(program) -> None:
    """A lowered program that needs CPU features this host lacks (`qir.requires`, set by lowering
    for weights whose int8 kernels compute exactly only with them) is refused: on this CPU it
    would compute something else than its reference, silently."""
    required = program.module.attributes.get("qir.requires")
    if not isinstance(required, StringAttr) or not required.data:
        return
    from qir.target import host, recorded_target

    missing = host().lacks(required.data.split(","))
    if missing:
        lowered_for = recorded_target(program.module)
        raise QirError(f"this program was lowered for {lowered_for} and needs {', '.join(sorted(missing))}, "
                       f"which this CPU ({host()}) lacks: its int8 kernels would saturate and compute "
                       "something else than its reference; lower the quantized program again for this "
                       "host (qir.lower(quantized, backend, target='host'), or "
                       "qir-opt -p 'lower-BACKEND{target=host}')")


class Emitter:
    """Walks `@forward` once, mapping each SSA value to an FX node (or Python value)."""

    def __init__(self, program):
        self.program = program
        self.attrs: dict[str, tuple[Any, str]] = {}  # target -> (constant, kind), copied when the module is built
        self.modules: dict[str, torch.nn.Module] = {}
        self.graph = fx.Graph()
        self.nodes: dict[SSAValue, Any] = _Nodes(self._read_param)
        self.unread: dict[SSAValue, ParamOp] = {}
        """Parameters walked over but not read as values yet (see `_Nodes`)."""
        self._attr_names: dict[str, str] = {}
        self._constants: dict[SSAValue, Any] = {}
        self._once: dict[Any, Any] = {}
        backend = program.module.attributes.get("qir.backend")
        self._backend = backend.data if isinstance(backend, StringAttr) else None
        self._folds: dict[str, FoldRule | None] = {}

    # -- helpers for rules ------------------------------------------------

    def node(self, value: SSAValue) -> Any:
        return self.nodes[value]

    def bind(self, op: Operation, node: fx.Node, multiple: bool = False) -> None:
        """Map the op's results to `node` (or to `node[i]` when the call returns a sequence)."""
        if not multiple:
            if op.results:
                self.nodes[op.results[0]] = node
            return
        for i, result in enumerate(op.results):
            if result.uses:
                self.nodes[result] = self.graph.call_function(
                    _getitem, (node, i), name=f"{node.name}_{i}"
                )

    def call(self, target: Any, args: tuple = (), kwargs: dict | None = None, name: str | None = None) -> fx.Node:
        return self.graph.call_function(target, args, kwargs or {}, name=name)

    def once(self, key: Any, make: Callable[[], Any]) -> Any:
        """What `make()` gave the first time `key` was asked for in this emission: nodes and
        constants that several ops share (weights packed once for the kernels reading them, an
        input quantized once for the three linears of an attention)."""
        if key not in self._once:
            self._once[key] = make()
        return self._once[key]

    def value(self, attr: Attribute, operands) -> Any:
        """An argument attribute as the Python value / FX node torch receives."""
        return torch_argument(attr, lambda i: self.nodes[operands[i]], self.training_switch)

    def training_switch(self, switch: str) -> fx.Node:
        """The node reading whether the module trains, for `#aten.training<switch>`: a call of the
        module's `switches.<switch>` (`qir.training.TrainingSwitch`), which `.train()`/`.eval()`
        flip and `qir.freeze_bn_stats` holds off."""

        def make() -> fx.Node:
            from qir.training import TrainingSwitch

            target = f"switches.{switch}"
            self.modules[target] = TrainingSwitch(switch in _frozen_switches(self.program))
            node = self.graph.call_module(target, ())
            node.name = self.graph._graph_namespace.create_name(f"{switch}_trains", node)
            return node

        return self.once(("training", switch), make)

    def get_attr(self, name: str, tensor: Any, kind: str = "buffer") -> fx.Node:
        """A get_attr node for a tensor (or packed weights) registered on the root module under `name`."""
        target = self._attr_names.get(name)
        if target is None:
            target = self._register(name, tensor, kind)
        return self.graph.get_attr(target)

    def new_attr(self, name: str, value: Any, kind: str = "constant") -> fx.Node:
        """A get_attr node for a new constant object (packed weights, a table) made while emitting;
        unlike `get_attr`, two calls never share one attribute."""
        return self.graph.get_attr(self._register(name, value, kind))

    def constant(self, value: SSAValue) -> Any:
        """The tensor behind `value` when it is known while emitting: a parameter, or an op with a
        fold rule (`folds`) applied to such values. None otherwise. Quantized values are their
        integer storage here, as in the parameter store."""
        if value in self._constants:
            return self._constants[value]
        owner = value.owner
        result = None
        if isinstance(owner, ParamOp):
            result = self.program.tensor(owner)
        elif isinstance(owner, Operation) and self._fold(owner.name) is not None:
            inputs = [self.constant(v) for v in owner.operands]
            if all(t is not None for t in inputs):
                result = self._fold(owner.name)(self, owner, inputs)
        self._constants[value] = result
        return result

    def _read_param(self, value: SSAValue) -> fx.Node:
        """The `get_attr` node of a parameter read for the first time (KeyError for a value that
        is not an unread parameter, as from any dict)."""
        op = self.unread.pop(value)
        kind = op.kind.data
        if kind == "parameter" and FROZEN in op.attributes:
            kind = "frozen parameter"
        return self.get_attr(op.param_name, self.program.tensor(op), kind)

    def _fold(self, op_name: str) -> FoldRule | None:
        if op_name not in self._folds:
            self._folds[op_name] = fold_for(op_name, self._backend)
        return self._folds[op_name]

    def _register(self, name: str, tensor: Any, kind: str) -> str:
        """Place `tensor` (or another constant object, such as prepacked weights) at the dotted
        path `name` (GraphModule builds the submodules)."""
        target = ".".join(re.sub(r"\W", "_", p) or "_" for p in name.split("."))
        while target in self.attrs:
            target += "_"
        self.attrs[target] = (tensor, kind)
        self._attr_names[name] = target
        return target

    # -- the walk ---------------------------------------------------------

    def run(self) -> fx.GraphModule:
        forward: func.FuncOp = self.program.forward
        names = _arg_names(forward)
        used: set[str] = set()
        for arg, name in zip(forward.body.block.args, names):
            node = self.graph.placeholder(_unique(_identifier(name), used))
            self.nodes[arg] = node
        if forward.body.block.args:
            from qir.input_check import InputCheck

            self.modules["input_check"] = InputCheck(names, [a.type for a in forward.body.block.args])
            self.graph.call_module("input_check", tuple(self.nodes[a] for a in forward.body.block.args))
        rules: dict[str, EmitRule | None] = {}
        for op in forward.body.block.ops:
            if op.name not in rules:
                rules[op.name] = rule_for(op.name, self._backend)
            rule = rules[op.name]
            if rule is None:
                raise QirError(f"cannot emit {op.name}: no emission rule for this op")
            try:
                rule(self, op)
            except QirError:
                raise
            except Exception as err:  # a rule that fails names the op it failed on
                raise QirError(f"cannot emit {op.name} {getattr(op, 'target', '')}: {err}") from err
        for node in list(self.graph.nodes):  # weights only read at emission (prepacked) are not kept
            if node.op == "get_attr" and not node.users:
                self.graph.erase_node(node)
        kept = {node.target for node in self.graph.nodes if node.op == "get_attr"}
        attrs = {target: _owned(value, kind) for target, (value, kind) in self.attrs.items() if target in kept}
        in_spec = _spec(forward, "qir.in_spec")
        out_spec = _spec(forward, "qir.out_spec")
        if in_spec is not None:
            self.graph._codegen = _PyTreeCodeGen(_PyTreeInfo(_forward_arg_names(forward, self.graph), in_spec, out_spec))
        gm = QirModule({**attrs, **self.modules}, self.graph, class_name="QirModule")
        gm.qir_program = self.program  # type: ignore[attr-defined]
        gm.qir_param_targets = {name: target for name, target in self._attr_names.items()  # type: ignore[attr-defined]
                                if target in kept and name in self.program.params}
        return gm


def _tracing() -> bool:
    """Whether a tracer (dynamo, FX, TorchScript) is running the module: it reads its code."""
    return torch.compiler.is_compiling() or fx._symbolic_trace.is_fx_symbolic_tracing() or torch.jit.is_tracing()


class QirModule(_LazyGraphModule):
    """The module `emit` builds. A lowered one holds what its backend packed for its kernels
    (oneDNN's opaque weight tensors, QNNPACK's packed parameters), which neither `copy.deepcopy`
    nor pickling (`torch.save`) can copy: a lowered module is copied and pickled through its
    program instead, emitted again from it (the same kernels, the same weights, the same
    outputs). Modules of the other stages copy and pickle as any GraphModule.

    Its Python code is generated when first needed (torch's lazy GraphModule: the first call,
    `.code`, printing, pickling), not when it is built: a Q/DQ module that is only lowered
    never runs, and generating and compiling its code was a fifth of the flow on 3200 nodes."""

    _lineno_map = None
    """What the generated code's lines map to, until the code exists. `torch.compile` reads it
    from the module it was given as soon as it traces the (lazy) forward, before that forward
    generates the code: without it, compiling a module failed (AttributeError)."""

    def _lazy_forward(self, *args: Any, **kwargs: Any) -> Any:
        """The first `INTERPRETED_CALLS` calls since the graph was last set run it through a
        `GraphRunner`, without generating its code; later calls (and calls under a tracer,
        which reads the code) generate it, as torch's lazy module does."""
        cls = type(self)
        runs = cls.__dict__.get("_qir_runs", 0)
        if runs < INTERPRETED_CALLS and not _tracing():
            runner = cls.__dict__.get("_qir_runner")
            if runner is None:
                runner = cls._qir_runner = GraphRunner.of(self) or False
            inputs = runner.inputs_of(args, kwargs) if runner else None
            if inputs is not None:
                cls._qir_runs = runs + 1
                return runner.run(self, inputs)
        return super()._lazy_forward(*args, **kwargs)

    forward = _lazy_forward

    @classmethod
    def recompile(cls) -> None:
        """The graph changed (or was set): its runner is made again, and its code when needed."""
        cls._qir_runner, cls._qir_runs = None, 0
        super().recompile()

    def _lowered_program(self):
        program = getattr(self, "qir_program", None)
        return program if getattr(program, "stage", None) == "lowered" else None

    def __deepcopy__(self, memo: dict[int, Any]) -> fx.GraphModule:
        program = self._lowered_program()
        if program is None:  # GraphModule's copy keeps only what the graph reads, not the program
            copied = super().__deepcopy__(memo)
            if hasattr(self, "qir_program"):
                copied.qir_program = self.qir_program.clone()
                copied.qir_param_targets = dict(self.qir_param_targets)
                _read_kept_modules(copied, copied.qir_program)  # the copy's own kept modules
            return copied
        program = program.clone()
        _read_kept_modules(self, program)
        program.modules = copy.deepcopy(program.modules, memo)
        copied = emit(program).train(self.training)
        memo[id(self)] = copied
        return copied

    def __reduce__(self):
        program = self._lowered_program()
        if program is None:
            return super().__reduce__()
        tensors = {name: program.params[name] for name in program.param_names()}
        program = program.clone()
        _read_kept_modules(self, program)
        return _emit_pickled, (program.text(debuginfo=True), tensors, self.training, program.modules)


class DeferredModule(QirModule):
    """A Q/DQ module whose FX graph is built from its program when it is first used (called,
    printed, copied, its graph or any attribute read), not when `convert` returns it: the module
    then becomes the `QirModule` `emit` builds, in place. Until then only `.qir_program` is read
    without building, which is all `lower` reads: a Q/DQ module that is only lowered is never
    built (its 7,200 FX nodes were a fifth of convert on the 3200-node chain)."""

    def __init__(self, program) -> None:  # nothing of nn.Module's state exists until it is built
        object.__setattr__(self, "_qir_deferred", program)

    def __getattribute__(self, name: str) -> Any:
        state = object.__getattribute__(self, "__dict__")
        program = state.get("_qir_deferred")
        if program is None:
            return object.__getattribute__(self, name)
        if name == "qir_program":
            return program
        if name == "__class__":  # isinstance() reads it when the class itself does not match
            return object.__getattribute__(self, name)
        built = emit(program)
        state.clear()
        state.update(built.__dict__)
        object.__setattr__(self, "__class__", type(built))
        return getattr(self, name)


def _emit_pickled(text: str, tensors: dict, training: bool, modules: dict | None = None) -> fx.GraphModule:
    """A lowered module unpickled: its program parsed back and emitted (`QirModule.__reduce__`),
    with the modules its `custom.call` ops call."""
    from qir.params import ParamStore
    from qir.program import parse

    program = parse(text, ParamStore(dict(tensors)), "<pickled qir module>")
    program.modules.update(modules or {})
    return emit(program).train(training)


def _read_kept_modules(module: fx.GraphModule, program) -> None:
    """The kept modules `module` calls (`custom.call`), as they are now, into `program`."""
    if program.modules:
        from qir.custom_modules import read_modules

        read_modules(module, program)


class _Nodes(dict):
    """Each SSA value's FX node (or the Python value it was emitted as), where a parameter's
    `get_attr` node is made when the parameter is first read (`make`): a lowered program reads
    most of its weights only while it is emitted, as constants to prepack (`Emitter.constant`),
    and a node made for each where the parameter stands would be erased again, unread."""

    def __init__(self, make: Callable[[SSAValue], Any]):
        super().__init__()
        self._make = make

    def __missing__(self, value: SSAValue) -> Any:
        node = self[value] = self._make(value)
        return node


@emits("aten.param")
def _emit_param(em: Emitter, op: ParamOp) -> None:
    em.unread[op.result] = op


FROZEN = "frozen"
"""The attribute of an `aten.param parameter` the model does not train (`requires_grad=False`)."""


def _frozen_switches(program) -> set[str]:
    """The training switches the program records as frozen (`qir.frozen_switches`)."""
    attr = program.module.attributes.get("qir.frozen_switches")
    return {a.data for a in attr.data} if isinstance(attr, ArrayAttr) else set()


@emits("aten.op")
def _emit_aten(em: Emitter, op: AtenOp) -> None:
    target_name = op.target.data
    operands = op.operands
    args = tuple(em.value(a, operands) for a in op.args.data)
    kwargs = {k: em.value(v, operands) for k, v in (op.kwargs.data.items() if op.kwargs else ())}
    name = op.results[0].name_hint if op.results else None
    if target_name.startswith("py::"):
        node = em.call(resolve_python_target(target_name), args, kwargs, name=name)
        em.bind(op, node)
        return
    target = resolve_overload(target_name)
    node = em.call(target, args, kwargs, name=name)
    schema = schema_of(target_name)
    multiple = schema is not None and (schema.variadic_results or len(schema.returns) > 1)
    em.bind(op, node, multiple)


@emits("aten.param_update")
def _emit_param_update(em: Emitter, op: ParamUpdateOp) -> None:
    name = op.sym.data
    unread = next((value for value, param in em.unread.items() if param.param_name == name), None)
    if unread is not None:
        em.node(unread)  # registered as its aten.param says
    if name in em._attr_names:
        buffer = em.graph.get_attr(em._attr_names[name])
    elif name in em.program.params:  # written but never read: registered here
        buffer = em.get_attr(name, em.program.params[name], "buffer")
    else:
        raise QirError(f"aten.param_update {name!r}: the program has no such buffer")
    em.call(torch.ops.aten.copy_.default, (buffer, em.node(op.new_value)))


@emits("func.return")
def _emit_return(em: Emitter, op: func.ReturnOp) -> None:
    em.graph.output([em.node(v) for v in op.arguments])


def _owned(value: Any, kind: str) -> Any:
    """What the module holds for a registered constant: a copy of a tensor (running or training
    the module never changes the program's tensors), a Parameter for a float parameter."""
    if not isinstance(value, torch.Tensor):
        return value
    tensor = value.detach().clone()
    if kind in ("parameter", "frozen parameter") and (tensor.is_floating_point() or tensor.is_complex()):
        tensor = torch.nn.Parameter(tensor, requires_grad=kind == "parameter")
    return tensor


def _spec(forward: func.FuncOp, key: str):
    attr = forward.attributes.get(key)
    return spec_from_text(attr.data) if isinstance(attr, StringAttr) else None


def _forward_arg_names(forward: func.FuncOp, graph: fx.Graph) -> list[str]:
    """The names of `forward`'s Python parameters (not of the flattened placeholders)."""
    attr = forward.attributes.get("qir.arg_names")
    if isinstance(attr, ArrayAttr):
        return [_identifier(a.data) for a in attr.data]
    return [n.name for n in graph.nodes if n.op == "placeholder"]


def _arg_names(forward: func.FuncOp) -> list[str]:
    return [a.name_hint or f"arg{i}" for i, a in enumerate(forward.body.block.args)]


def _identifier(name: str) -> str:
    name = re.sub(r"\W", "_", name)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = "_" + name
    return name


def _unique(name: str, used: set[str]) -> str:
    candidate, i = name, 0
    while candidate in used:
        i += 1
        candidate = f"{name}_{i}"
    used.add(candidate)
    return candidate
