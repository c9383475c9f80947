"""Custom modules: submodules qir keeps as they are, each call one opaque `custom.call` op.

    custom = (qir.CustomModules()
              .keep_float("encoder.tokenizer")            # by path: code export cannot capture
              .keep_float(NumpyFilter)                    # by type: every instance
              .replace(MyAttention, observed=ObservedAttention, quantized=QuantizedAttention))
    prepared = qir.prepare(model, example_inputs, X86Quantizer(), custom_modules=custom)

A module kept **float** runs as it is at every stage; the rest of the model is exported,
quantized and lowered around it. A module **replaced** works as FX mode's custom module
config: at prepare it becomes `observed.from_float(module)` and its inputs and outputs are
observed as the quantizer configures the module (`set_module_name` / `set_object_type`; a
None config leaves it float); at convert it becomes `quantized.from_observed(observed)`,
which finds the boundary's quantization parameters on the observed module
(`activation_post_process`, as FX gives them, and `qir_input_qparams` /
`qir_output_qparams`, a `QParams` or None per input and output). The quantized module is
called with torch quantized tensors of those parameters and returns quantized tensors
(or float ones); after convert and after lowering, on every backend, the same object runs.
`observed` may be omitted (the float module is then observed only at its boundary);
either may be a class with `from_float` / `from_observed` or any callable.

Capture: the model is run once on the example inputs (with forward hooks on the kept
modules: a shape probe), then exported with each kept module's `forward` replaced, for the
duration, by a call of one opaque operator, `torch.ops.qir.call_module(call, tensors)`
(a `torch.library.custom_op`): `call` describes the call (module path, non-tensor
arguments, pytree structures, output dtypes and shapes from the probe) and its fake
implementation gives export tensors of those shapes, so export never looks inside. The
importer makes each such node a `custom.call` op, and the Program holds the module objects
(`Program.modules`, copies: the model is never changed). `torch.library.custom_op` is a
stable public API that both strict and non-strict export keep as an ordinary node, with
dynamic shapes flowing through its fake implementation; torch's `leaf_function`
(`invoke_leaf_function`) is private, lifts opaque callables as custom-object inputs of the
graph and fails under strict export; `preserve_module_call_signature` keeps a module's
boundary but still traces inside it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import torch
import torch.fx as fx
from torch.utils import _pytree as pytree

from qir.emitter import Emitter, emits
from qir.errors import QirError, UnsupportedError
from qir.pytree_text import spec_from_text, spec_to_text

# --------------------------------------------------------------------------
# What the user asks for.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    observed: Any = None
    quantized: Any = None
    replace: bool = False


class CustomModules:
    """Which submodules qir keeps as they are, by path (`"encoder.tokenizer"`) or by type (every
    instance of exactly that class). A path is more specific than a type; a module inside a
    kept one is part of it."""

    def __init__(self) -> None:
        self._by_path: dict[str, _Rule] = {}
        self._by_type: dict[type, _Rule] = {}

    def keep_float(self, *modules: str | type) -> "CustomModules":
        """Keep these modules in float, as they are: code `torch.export` cannot capture
        (data-dependent Python control flow, calls into other libraries), or that must not be
        quantized. The rest of the model is exported and quantized around them."""
        for module in modules:
            self._add(module, _Rule())
        return self

    def replace(self, module: str | type, *, quantized, observed=None) -> "CustomModules":
        """Replace a module by the user's own quantized form, FX's custom module config:
        `observed.from_float(float_module)` at prepare (or `observed(float_module)`; None: the
        float module, observed at its boundary only), `quantized.from_observed(observed_module)`
        at convert (or `quantized(observed_module)`)."""
        if quantized is None:
            raise ValueError("replace: give the quantized form (a class with from_observed, or a callable)")
        self._add(module, _Rule(observed, quantized, replace=True))
        return self

    def _add(self, module: str | type, rule: _Rule) -> None:
        if isinstance(module, str):
            if not module:
                raise ValueError("the model itself cannot be kept as it is: name one of its submodules")
            self._by_path[module] = rule
        elif isinstance(module, type) and issubclass(module, torch.nn.Module):
            self._by_type[module] = rule
        else:
            raise TypeError(f"name a submodule by its path (str) or its nn.Module class, not {module!r}")

    def __bool__(self) -> bool:
        return bool(self._by_path or self._by_type)

    def select(self, model: torch.nn.Module) -> dict[str, tuple[torch.nn.Module, _Rule]]:
        """The submodules of `model` to keep, outermost first: path → (module, rule)."""
        if type(model) in self._by_type:
            raise ValueError(f"the model itself ({type(model).__name__}) cannot be kept as it is: name one of "
                             "its submodules")
        chosen: dict[str, tuple[torch.nn.Module, _Rule]] = {}
        found_paths = set()
        for path, module in model.named_modules():
            if path in self._by_path:
                found_paths.add(path)
            if not path or any(path.startswith(p + ".") for p in chosen):
                continue
            rule = self._by_path.get(path) or self._by_type.get(type(module))
            if rule is not None:
                chosen[path] = (module, rule)
        missing = sorted(set(self._by_path) - found_paths)
        if missing:
            raise ValueError(f"custom modules: {type(model).__name__} has no submodule {missing[0]!r}")
        return chosen


# --------------------------------------------------------------------------
# What the program holds.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class KeptModule:
    """A module a program calls (`custom.call`): its present form and how to make the next ones."""

    module: torch.nn.Module
    form: str = "float"
    """`float`, `observed` or `quantized`: which form `module` is."""
    observed: Any = None
    quantized: Any = None


_FORM_OF_OP = {"float": "float", "custom": "float", "observed": "observed", "quantized": "quantized"}
_ORDER = ("float", "observed", "quantized")


class QParams(NamedTuple):
    """The quantization parameters of one input or output of a quantized custom module."""

    scale: float
    zero_point: int
    dtype: torch.dtype
    quant_min: int
    quant_max: int


class BoundaryQParams(torch.nn.Module):
    """The output's parameters as FX's `from_observed` reads them (`activation_post_process`)."""

    def __init__(self, qparams: QParams):
        super().__init__()
        self.scale, self.zero_point, self.dtype = qparams.scale, qparams.zero_point, qparams.dtype
        self.quant_min, self.quant_max = qparams.quant_min, qparams.quant_max
        self.qscheme = torch.per_tensor_affine

    def calculate_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor([self.scale], dtype=torch.float32), torch.tensor([self.zero_point], dtype=torch.int64)

    def forward(self, x):
        return x


def held_module(program, op) -> torch.nn.Module:
    """The module object `op` (a `custom.call`) calls, in the form it calls; the program's entry
    moves on to that form when it holds an earlier one (float → observed → quantized)."""
    name = op.module_name
    entry = program.modules.get(name)
    if entry is None:
        raise QirError(f"custom.call {name!r}: the program does not hold this module (a program read from "
                       "text gets its modules from qir.load(path, modules={...}), or unpickle_modules=True "
                       "for the file Program.save wrote beside it)")
    wanted = _FORM_OF_OP[op.form_name]
    if not isinstance(entry, KeptModule):  # a bare module given to qir.load: the form the program calls
        entry = KeptModule(entry, wanted)
    if _ORDER.index(entry.form) > _ORDER.index(wanted):
        raise QirError(f"custom.call {name!r} calls the {wanted} form of the module, but the program holds "
                       f"its {entry.form} form (all calls of a custom module are quantized alike)")
    if entry.form == "float" and wanted != "float":
        entry = replace(entry, module=_observed(entry, name), form="observed")
    if entry.form == "observed" and wanted == "quantized":
        entry = replace(entry, module=_quantized(entry, op), form="quantized")
    program.modules[name] = entry
    return entry.module


def _observed(entry: KeptModule, name: str) -> torch.nn.Module:
    make = entry.observed
    if make is None:  # observed at its boundary only: a copy, so that the float module stays as it is
        return copy.deepcopy(entry.module)
    try:
        return make.from_float(entry.module) if hasattr(make, "from_float") else make(entry.module)
    except Exception as err:
        raise QirError(f"custom module {name!r}: making its observed form failed: {type(err).__name__}: {err}") from err


def _quantized(entry: KeptModule, op) -> torch.nn.Module:
    name = op.module_name
    if entry.quantized is None:
        raise QirError(f"custom module {name!r} has no quantized form (CustomModules.replace gives it)")
    observed = entry.module
    inputs = [_qparams(t) for t in op.signature.inputs.data]
    outputs = [_qparams(t) for t in op.signature.outputs.data]
    observed.qir_input_qparams = inputs
    observed.qir_output_qparams = outputs
    if outputs and outputs[0] is not None:
        observed.activation_post_process = BoundaryQParams(outputs[0])
    make = entry.quantized
    try:
        return make.from_observed(observed) if hasattr(make, "from_observed") else make(observed)
    except Exception as err:
        raise QirError(f"custom module {name!r}: making its quantized form failed: {type(err).__name__}: {err}") from err


_QTENSOR_DTYPES = {"uint8": torch.quint8, "int8": torch.qint8, "int32": torch.qint32}


def _qparams(type_) -> QParams | None:
    from qir.dialects.quant import UniformQuantizedType

    element = getattr(type_, "element_type", None)
    if not isinstance(element, UniformQuantizedType):
        return None
    dtype = _QTENSOR_DTYPES.get(element.storage_dtype_name)
    if dtype is None:
        raise QirError(f"torch has no quantized tensors of {element.storage_dtype_name} storage: a custom "
                       "module's boundary is quantized to uint8, int8 or int32")
    return QParams(element.scale, element.zero_point, dtype, element.storage_min, element.storage_max)


def read_modules(module: torch.nn.Module, program) -> None:
    """The kept modules of an emitted module (as calibration or training left them) into `program`."""
    for name, entry in list(program.modules.items()):
        try:
            held = module.get_submodule(f"{MODULES}.{name}")
        except AttributeError:
            continue
        if isinstance(entry, KeptModule) and held is not entry.module:
            program.modules[name] = replace(entry, module=held)


MODULES = "custom_modules"
"""Where an emitted module holds the kept modules: `custom_modules.<path>`."""


# --------------------------------------------------------------------------
# Emission.
# --------------------------------------------------------------------------


@emits("custom.call")
def _emit_call(em: Emitter, op) -> None:
    from xdsl.dialects.builtin import NoneType

    from qir.dialects.aten import OperandAttr, from_attr

    module = held_module(em.program, op)
    target = f"{MODULES}.{op.module_name}"
    registered = em.modules.setdefault(target, module)
    if registered is not module:
        raise QirError(f"custom.call {op.module_name!r}: two calls of the module need different forms")
    seen = op.signature.inputs.data if op.signature is not None else [None] * len(op.operands)
    leaves = []
    for leaf in op.args.data:
        if isinstance(leaf, OperandAttr):
            index = leaf.index.data
            qparams = _qparams(seen[index]) if seen[index] is not None else None
            leaves.append(_quantize(em, em.node(op.operands[index]), qparams))
        else:  # (`none` read back from the generic form is the none type)
            leaves.append(None if isinstance(leaf, NoneType) else from_attr(leaf, ()))
    in_spec = spec_from_text(op.in_spec.data) if op.in_spec is not None else _positional(len(leaves))
    name = op.results[0].name_hint if op.results else None
    if _plain(in_spec):
        args, kwargs = pytree.tree_unflatten(leaves, in_spec)
        node = em.graph.call_module(target, tuple(args), dict(kwargs))
        if name:
            node.name = em.graph._graph_namespace.create_name(name, node)
    else:  # namedtuples, registered classes: rebuilt when the module runs
        node = em.call(call_structured, (em.graph.get_attr(target), op.in_spec.data, *leaves), name=name)
    out_spec = op.out_spec.data if op.out_spec is not None else ("*" if len(op.results) == 1 else None)
    quantized = [_qparams(t) is not None for t in op.signature.outputs.data] if op.signature is not None else []
    if out_spec == "*":
        em.nodes[op.results[0]] = em.call(dequantized, (node,)) if any(quantized) else node
        return
    flat = em.call(output_leaves, (node,))
    for index, result in enumerate(op.results):
        value = em.call(_getitem, (flat, index), name=f"{flat.name}_{index}")
        em.nodes[result] = em.call(dequantized, (value,)) if index < len(quantized) and quantized[index] else value


def _quantize(em: Emitter, node, qparams: QParams | None):
    if qparams is None:
        return node
    return em.call(torch.quantize_per_tensor, (node, qparams.scale, qparams.zero_point, qparams.dtype))


def _positional(count: int) -> pytree.TreeSpec:
    return pytree.tree_structure((tuple(range(count)), {}))


def _plain(spec: pytree.TreeSpec) -> bool:
    """Whether the spec's containers are tuples, lists and dicts (FX takes those as arguments)."""
    if spec.is_leaf():
        return True
    return spec.type in (tuple, list, dict, type(None)) and all(_plain(c) for c in spec.children())


def call_structured(module: torch.nn.Module, in_spec: str, *leaves):
    """`module` called with `leaves` arranged as `in_spec` says (`(args, kwargs)`)."""
    args, kwargs = pytree.tree_unflatten(list(leaves), spec_from_text(in_spec))
    return module(*args, **kwargs)


def output_leaves(output) -> list:
    """A kept module's output as the flat list of its tensors (the `custom.call` results)."""
    return pytree.tree_leaves(output)


def dequantized(value):
    """A quantized custom module's output as the float value the program reads."""
    return value.dequantize() if isinstance(value, torch.Tensor) and value.is_quantized else value


def _getitem(sequence, index: int):
    return sequence[index]


# --------------------------------------------------------------------------
# Capture: probe, then export with each kept module behind one opaque operator.
# --------------------------------------------------------------------------


@torch.library.custom_op("qir::call_module", mutates_args=())
def _call_module(call: str, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    raise QirError("torch.ops.qir.call_module stands for a kept module while qir exports a model; it does "
                   "not run (the emitted module calls the module itself)")


@_call_module.register_fake
def _call_module_fake(call: str, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    described = json.loads(call)
    device = inputs[0].device if inputs else torch.device("cpu")
    outputs = []
    for output in described["outputs"]:
        shape = [inputs[d[0]].shape[d[1]] if isinstance(d, list) else d for d in output["shape"]]
        outputs.append(torch.empty(shape, dtype=getattr(torch, output["dtype"]), device=device))
    return outputs


@dataclass
class _Call:
    """One call of a kept module, as the probe saw it."""

    text: str
    out_spec: pytree.TreeSpec
    tensors: int


@dataclass
class _Probe:
    calls: dict[str, list[_Call]] = field(default_factory=dict)


def _describe_call(path: str, rule: _Rule, args: tuple, kwargs: dict, output: Any) -> _Call:
    leaves, in_spec = pytree.tree_flatten((args, kwargs))
    described_leaves: list[Any] = []
    tensors: list[torch.Tensor] = []
    for position, leaf in enumerate(leaves):
        if isinstance(leaf, torch.Tensor):
            described_leaves.append(None)
            tensors.append(leaf)
        elif leaf is None or isinstance(leaf, bool | int | float | str):
            described_leaves.append({"value": leaf})
        else:
            raise UnsupportedError(f"custom module {path!r}: argument {position} is a {type(leaf).__name__}; a kept "
                                   "module takes tensors, numbers, strings and None (in tuples, lists and dicts)")
    out_leaves, out_spec = pytree.tree_flatten(output)
    outputs = []
    for position, value in enumerate(out_leaves):
        if not isinstance(value, torch.Tensor):
            raise UnsupportedError(f"custom module {path!r}: output {position} is a {type(value).__name__}; a kept "
                                   "module returns tensors (in tuples, lists and dicts)")
        shape: list[Any] = []
        for axis, size in enumerate(value.shape):
            # a dimension that equals the same dimension of an input follows it (a dynamic batch size)
            source = next((i for i, t in enumerate(tensors) if t.dim() > axis and t.shape[axis] == size), None)
            shape.append([source, axis] if source is not None else int(size))
        outputs.append({"dtype": str(value.dtype).removeprefix("torch."), "shape": shape})
    text = json.dumps({"module": path, "form": "custom" if rule.replace else "float", "leaves": described_leaves,
                       "in_spec": spec_to_text(in_spec), "out_spec": spec_to_text(out_spec), "outputs": outputs})
    return _Call(text, out_spec, len(tensors))


def _probe(model: torch.nn.Module, args: tuple, kwargs: dict,
           kept: dict[str, tuple[torch.nn.Module, _Rule]]) -> _Probe:
    """Run the model once (a copy when it trains: running it would update its statistics),
    recording each call of each kept module."""
    runner = copy.deepcopy(model) if any(m.training for m in model.modules()) else model
    probe = _Probe({path: [] for path in kept})
    handles = []
    for path, (_, rule) in kept.items():
        def hook(module, hook_args, hook_kwargs, output, path=path, rule=rule):
            probe.calls[path].append(_describe_call(path, rule, hook_args, hook_kwargs, output))

        handles.append(runner.get_submodule(path).register_forward_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad():
            runner(*args, **kwargs)
    except QirError:
        raise
    except Exception as err:
        raise QirError(f"the model failed on the example inputs, run to see what its kept modules take and "
                       f"return: {type(err).__name__}: {err}") from err
    finally:
        for handle in handles:
            handle.remove()
    return probe


class _Opaque:
    """While exporting, the kept modules' `forward`s call `torch.ops.qir.call_module`."""

    def __init__(self, kept: dict[str, tuple[torch.nn.Module, _Rule]], probe: _Probe):
        self.kept, self.probe = kept, probe
        self.saved: list[tuple[torch.nn.Module, Any]] = []

    def __enter__(self):
        for path, (module, _) in self.kept.items():
            self.saved.append((module, module.__dict__.get("forward")))
            module.forward = self._forward(path)
        return self

    def __exit__(self, *exc):
        for module, forward in self.saved:
            if forward is None:
                del module.forward
            else:
                module.forward = forward

    def _forward(self, path: str) -> Callable:
        calls = self.probe.calls[path]
        count = [0]

        def forward(*args, **kwargs):
            if not calls:
                raise QirError(f"custom module {path!r} is called while exporting but was not called when the "
                               "model ran on the example inputs")
            call = calls[count[0] % len(calls)]
            count[0] += 1
            tensors = [leaf for leaf in pytree.tree_leaves((args, kwargs)) if isinstance(leaf, torch.Tensor)]
            if len(tensors) != call.tensors:
                raise QirError(f"custom module {path!r}: called with {len(tensors)} tensors while exporting, "
                               f"{call.tensors} when the model ran")
            outputs = torch.ops.qir.call_module(call.text, tensors)
            return pytree.tree_unflatten(list(outputs), call.out_spec)

        return forward


def export(model: torch.nn.Module, args: tuple, kwargs: dict | None, dynamic_shapes: Any,
           custom_modules: CustomModules, strict: bool = False):
    """`torch.export` the model with the kept modules opaque, then import it: a Program whose
    `custom.call` ops call copies of the kept modules (`Program.modules`)."""
    from qir.importer import import_program

    kwargs = kwargs or {}
    kept = custom_modules.select(model)
    if not kept:
        ep = torch.export.export(model, args, kwargs, dynamic_shapes=dynamic_shapes, strict=strict)
        return import_program(ep)
    probe = _probe(model, args, kwargs, kept)
    with _Opaque(kept, probe):
        ep = torch.export.export(model, args, kwargs, dynamic_shapes=dynamic_shapes, strict=strict)
    program = import_program(ep)
    called = {op.module_name for op in program.module.walk() if op.name == "custom.call"}
    for path, (module, rule) in kept.items():
        if path in called:
            program.modules[path] = KeptModule(_copy(module), "float", rule.observed, rule.quantized)
    return program


def _copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of a kept module (the model is never changed); the module itself when it cannot be
    copied (it holds what deepcopy cannot: a library's handle)."""
    try:
        return copy.deepcopy(module)
    except Exception:
        return module


def import_call(node: fx.Node, values: list, result_types: list, attributes: dict):
    """The `custom.call` op of an exported `qir::call_module` node; `values` are its tensor
    operands (imported), `result_types` the IR types of its results."""
    from qir.dialects.custom import CallOp

    described = json.loads(node.args[0])
    tensors = iter(values)
    leaves = [next(tensors) if leaf is None else leaf["value"] for leaf in described["leaves"]]
    tensor_count = sum(leaf is None for leaf in described["leaves"])
    if tensor_count != len(values):
        raise UnsupportedError(f"node {node.name!r}: the call describes {tensor_count} tensors, it has {len(values)}")
    in_spec = described["in_spec"]
    out_spec = described["out_spec"]
    if in_spec == spec_to_text(_positional(len(leaves))):
        in_spec = None
    if out_spec == "*" and len(result_types) == 1 or out_spec == _tuple_text(len(result_types)) and len(result_types) > 1:
        out_spec = None
    return CallOp(described["module"], leaves, result_types, form=described["form"], in_spec=in_spec,
                  out_spec=out_spec, attributes=attributes)


def _tuple_text(count: int) -> str:
    return spec_to_text(pytree.tree_structure(tuple(range(count))))


def kept_modules(program) -> Iterable[str]:
    """The names of the modules a program's `custom.call` ops call."""
    return sorted({op.module_name for op in program.module.walk() if op.name == "custom.call"})
