"""From a `torch.export.ExportedProgram` to a qir `Program`.

The exported graph is walked once, in order. User inputs become the arguments
of `func.func @forward`, parameters, buffers and lifted constants become
`aten.param` ops (their tensors go to the parameter store), every operator call
becomes an `aten.op`, `getitem` on a multi-result call becomes a use of that
result, and buffer mutations become `aten.param_update`. The calling
convention (pytree specs and argument names) is kept on the function so that
the emitter can rebuild a module called exactly like the original.

Nothing of the ExportedProgram is changed; tensors are copied into the store.
"""

from __future__ import annotations

import os

import operator
import re
from functools import cache
from typing import Any

import torch
import torch.fx as fx
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    UnitAttr,
    FileLineColLoc,
    IntAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    f64,
    i1,
    i64,
)
from xdsl.ir import Attribute, Block, Region, SSAValue

from qir.dialects.aten import PYTHON_TARGETS, AtenOp, ParamOp, ParamUpdateOp
from qir.errors import UnsupportedError
from qir.gc_pause import paused_gc
from qir.pytree_text import spec_to_text
from qir.params import ParamStore
from qir.program import Program, STAGE_ATTR
from qir.torch_values import ELEMENT_TYPES, enum_attr

_PARAM_KINDS = {
    InputKind.PARAMETER: "parameter",
    InputKind.BUFFER: "buffer",
    InputKind.CONSTANT_TENSOR: "constant",
}


def import_program(ep: ExportedProgram) -> Program:
    """Import an ExportedProgram (left unchanged) as a float-stage qir Program."""
    if not isinstance(ep, ExportedProgram):
        raise TypeError(f"import_program expects a torch.export.ExportedProgram, got {type(ep).__name__}")
    with paused_gc():
        return _Importer(ep).run()


def export(model: torch.nn.Module, args: tuple, kwargs: dict | None = None,
           dynamic_shapes: Any = None, strict: bool = False, custom_modules=None) -> Program:
    """`torch.export.export` the model, then import it. The model is not changed.
    `custom_modules` (a `qir.CustomModules`) names submodules kept as they are (`custom.call`)."""
    if not isinstance(args, tuple):
        args = (args,)
    if custom_modules:
        from qir.custom_modules import export as export_keeping

        return export_keeping(model, args, kwargs, dynamic_shapes, custom_modules, strict)
    ep = torch.export.export(model, args, kwargs or {}, dynamic_shapes=dynamic_shapes, strict=strict)
    return import_program(ep)


def tensor_type(value: Any, where: str) -> Attribute:
    """The IR type of a node's value: tensor<...>, or i64/f64/i1 for symbolic scalars."""
    if isinstance(value, torch.Tensor):
        shape = tuple(d if isinstance(d, int) else _static_or_dynamic(d) for d in value.shape)
        element = ELEMENT_TYPES.get(str(value.dtype).removeprefix("torch."))
        if element is None:
            raise UnsupportedError(f"{where}: tensors of dtype {value.dtype} are not supported")
        return _tensor_type(element, shape)
    if isinstance(value, bool | torch.SymBool):
        return i1
    if isinstance(value, int | torch.SymInt):
        return i64
    if isinstance(value, float | torch.SymFloat):
        return f64
    raise UnsupportedError(f"{where}: values of type {type(value).__name__} are not supported")


@cache
def _tensor_type(element: Attribute, shape: tuple[int, ...]) -> TensorType:
    return TensorType(element, shape)


def _static_or_dynamic(dim: torch.SymInt) -> int:
    hint = dim.node.maybe_as_int()
    return hint if hint is not None else DYNAMIC_INDEX


def _target_name(node: fx.Node) -> str:
    """The `aten.op` target of a call_function node, or an error naming the node."""
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        name = f"{target._opname}.{target._overloadname}"
        return name if target.namespace == "aten" else f"{target.namespace}::{name}"
    if isinstance(target, torch._ops.HigherOrderOperator):
        raise UnsupportedError(
            f"node {node.name!r}: higher-order operator {target.name()} (control flow or "
            "wrapped subgraphs) is not supported"
        )
    module = getattr(target, "__module__", None) or ""
    module = {"_operator": "operator"}.get(module, module)
    name = getattr(target, "__name__", "")
    if name in PYTHON_TARGETS.get(module, ()):
        return f"py::{module}.{name}"
    raise UnsupportedError(f"node {node.name!r}: cannot import a call to {target!r}")


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def _location(trace: str | None) -> FileLineColLoc | None:
    """The innermost frame of a node's stack trace outside torch itself (the user's model code,
    not `torch/nn/modules/conv.py`), as an MLIR file:line:col location; torch's frame when the
    op was written nowhere else."""
    if not trace:
        return None
    frames = _FRAME.findall(trace)
    if not frames:
        return None
    own = [f for f in frames if not _in_torch(f[0])]
    file, line = (own or frames)[-1]
    return FileLineColLoc(StringAttr(file), IntAttr(int(line)), IntAttr(0))


_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def _in_torch(file: str) -> bool:
    return file.startswith(_TORCH_DIR)


def _provenance(node: fx.Node, strings: dict[str, StringAttr]) -> dict[str, Attribute]:
    """The `module` and `module_type` attributes of `node`'s op; `strings` holds the ones built
    so far (every layer of a kind has the same module type)."""
    stack = node.meta.get("nn_module_stack") or {}
    entries = [v for v in stack.values() if isinstance(v, tuple) and len(v) == 2]
    entries = [(p, t) for p, t in entries if p != "_empty_nn_module_stack_from_metadata_hook"]
    if not entries:
        return {}
    path, type_name = entries[-1]
    attrs: dict[str, Attribute] = {}
    if path:  # the root module's own ops have no path, only its type (`set_object_type` of a bare nn.Linear)
        attrs["module"] = StringAttr(_clean_module_path(path))
    type_text = type_name if isinstance(type_name, str) else f"{type_name.__module__}.{type_name.__qualname__}"
    if type_text not in strings:
        strings[type_text] = StringAttr(type_text)
    attrs["module_type"] = strings[type_text]
    return attrs


_SELF_PREFIX = re.compile(r"^L\['self'\]\.?")
_INDEX = re.compile(r"\[(\d+)\]")
_KEY = re.compile(r"\['([^']+)'\]")


def _clean_module_path(path: str) -> str:
    """`L['self'].layer1[0].conv1` or `layer1.0.conv1` → `layer1.0.conv1`."""
    if "[" in path:
        path = _KEY.sub(r".\1", _INDEX.sub(r".\1", _SELF_PREFIX.sub("", path)))
    return path.strip(".")


class _Importer:
    def __init__(self, ep: ExportedProgram):
        self.ep = ep
        self.values: dict[fx.Node, Any] = {}
        self.params = ParamStore()
        self.locations: dict[str, FileLineColLoc | None] = {}
        """Locations by stack trace: the layers of a loop or an `nn.Sequential` share theirs."""
        self.strings: dict[str, StringAttr] = {}

    def run(self) -> Program:
        ep = self.ep
        for node in ep.graph.nodes:  # say what the model does, before the get_attr it needs
            if node.op == "call_function" and isinstance(node.target, torch._ops.HigherOrderOperator):
                _target_name(node)
        user_inputs: list[fx.Node] = []
        param_nodes: list[tuple[fx.Node, Any]] = []
        specs = {s.arg.name: s for s in ep.graph_signature.input_specs}
        for node in ep.graph.nodes:
            if node.op != "placeholder":
                continue
            spec = specs[node.name]
            if spec.kind == InputKind.USER_INPUT:
                user_inputs.append(node)
            elif spec.kind in _PARAM_KINDS:
                param_nodes.append((node, spec))
            else:
                raise UnsupportedError(f"input {node.name!r}: {spec.kind.name} inputs are not supported")

        arg_types = [tensor_type(n.meta.get("val"), f"input {n.name!r}") for n in user_inputs]
        block = Block(arg_types=arg_types)
        for arg, node in zip(block.args, user_inputs):
            arg.name_hint = _valid_name(node.name)
            self.values[node] = arg

        for node, spec in param_nodes:
            tensor = self._state(spec)
            self.params[spec.target] = tensor
            op = ParamOp(spec.target, tensor_type(tensor, f"parameter {spec.target!r}"),
                         _PARAM_KINDS[spec.kind])
            if spec.kind == InputKind.PARAMETER and not self._trains(spec.target):
                op.attributes["frozen"] = UnitAttr()  # training (QAT) leaves it as it is
            op.result.name_hint = _valid_name(node.name)
            block.add_op(op)
            self.values[node] = op.result

        output_node = None
        for node in ep.graph.nodes:
            if node.op == "placeholder":
                continue
            if node.op == "output":
                output_node = node
            elif node.op == "call_function":
                self._import_call(node, block)
            elif node.op == "call_module" and str(node.target) == "_guards_fn":
                continue  # export's own guard check (torch >= 2.9): not part of the model.
            else:
                raise UnsupportedError(f"node {node.name!r}: cannot import a {node.op} node ({node.target})")

        results = self._import_outputs(output_node, block)
        call_spec = ep.call_spec
        fn = func.FuncOp("forward", (arg_types, [r.type for r in results]), Region(block))
        fn.attributes["qir.in_spec"] = StringAttr(spec_to_text(call_spec.in_spec))
        fn.attributes["qir.out_spec"] = StringAttr(spec_to_text(call_spec.out_spec))
        names = ep.module_call_graph[0].signature.forward_arg_names if ep.module_call_graph else None
        if names:
            fn.attributes["qir.arg_names"] = ArrayAttr([StringAttr(n) for n in names])
        module = ModuleOp([fn])
        module.attributes[STAGE_ATTR] = StringAttr("float")
        program = Program(module, self.params)
        _verify_imported(program)
        return program

    def _trains(self, name: str) -> bool:
        tensor = self.ep.state_dict.get(name)
        return not isinstance(tensor, torch.Tensor) or tensor.requires_grad

    def _state(self, spec) -> torch.Tensor:
        ep = self.ep
        if spec.target in ep.state_dict:
            tensor = ep.state_dict[spec.target]
        elif spec.target in ep.constants:
            tensor = ep.constants[spec.target]
        else:
            raise UnsupportedError(f"input {spec.arg.name!r}: no tensor named {spec.target!r} in the program")
        if not isinstance(tensor, torch.Tensor):
            raise UnsupportedError(f"input {spec.arg.name!r}: {type(tensor).__name__} constants are not supported")
        return tensor.detach().clone()

    def _import_call(self, node: fx.Node, block: Block) -> None:
        if node.target is operator.getitem:
            source, index = node.args
            values = self.values.get(source)
            if not isinstance(values, list):
                raise UnsupportedError(f"node {node.name!r}: getitem on something that is not a list of results")
            self.values[node] = values[index]
            return
        if _is_kept_module_call(node):
            self._import_kept_module_call(node, block)
            return
        target = _target_name(node)
        val = node.meta.get("val")
        where = f"node {node.name!r} ({target})"
        multiple = isinstance(val, list | tuple)
        vals = list(val) if multiple else ([] if val is None else [val])
        if any(v is None for v in vals):
            raise UnsupportedError(f"{where}: results that may be None are not supported")
        result_types = [tensor_type(v, where) for v in vals]
        args = [self._arg(a, where) for a in node.args]
        kwargs = {k: self._arg(v, where) for k, v in node.kwargs.items()}
        op = AtenOp(target, args, kwargs, result_types, _provenance(node, self.strings))
        location = self._location(node)
        if location is not None:
            op.location = location
        for r in op.results:
            r.name_hint = _valid_name(node.name)
        block.add_op(op)
        self.values[node] = list(op.results) if multiple else (op.results[0] if op.results else None)

    def _location(self, node: fx.Node) -> FileLineColLoc | None:
        trace = node.meta.get("stack_trace")
        if trace not in self.locations:
            self.locations[trace] = _location(trace)
        return self.locations[trace]

    def _import_kept_module_call(self, node: fx.Node, block: Block) -> None:
        """A call of a module the user keeps as it is (`qir.CustomModules`): one `custom.call`."""
        from qir.custom_modules import import_call

        where = f"node {node.name!r} (a call of a kept module)"
        values = [self._arg(v, where) for v in node.args[1]]
        result_types = [tensor_type(v, where) for v in node.meta.get("val") or []]
        op = import_call(node, values, result_types, _provenance(node, self.strings))
        location = self._location(node)
        if location is not None:
            op.location = location
        for r in op.results:
            r.name_hint = _valid_name(op.module_name)  # `%encoder_tokenizer`, not `%call_module`
        block.add_op(op)
        self.values[node] = list(op.results)

    def _arg(self, value: Any, where: str) -> Any:
        if isinstance(value, fx.Node):
            mapped = self.values.get(value)
            if not isinstance(mapped, SSAValue):
                raise UnsupportedError(f"{where}: argument {value.name!r} is not a single value")
            return mapped
        if isinstance(value, list | tuple):
            return [self._arg(v, where) for v in value]
        if value is None or isinstance(value, bool | int | float | str):
            return value
        attr = enum_attr(value)
        if attr is not None:
            return attr
        raise UnsupportedError(f"{where}: cannot represent argument {value!r} ({type(value).__name__})")

    def _import_outputs(self, output_node: fx.Node | None, block: Block) -> list[SSAValue]:
        if output_node is None:
            raise UnsupportedError("the exported graph has no output node")
        outputs = output_node.args[0]
        results: list[SSAValue] = []
        for spec, out in zip(self.ep.graph_signature.output_specs, outputs):
            value = self.values.get(out) if isinstance(out, fx.Node) else None
            if not isinstance(value, SSAValue):
                raise UnsupportedError(f"output {spec.arg.name!r}: only tensor and symbolic outputs are supported, got {out!r}")
            if spec.kind == OutputKind.USER_OUTPUT:
                results.append(value)
            elif spec.kind == OutputKind.BUFFER_MUTATION:
                block.add_op(ParamUpdateOp(spec.target, value))
            else:
                raise UnsupportedError(f"output {spec.arg.name!r}: {spec.kind.name} outputs are not supported")
        block.add_op(func.ReturnOp(*results))
        return results


def _is_kept_module_call(node: fx.Node) -> bool:
    """Whether `node` stands for a kept module (`torch.ops.qir.call_module`, see `qir.custom_modules`)."""
    target = node.target
    return isinstance(target, torch._ops.OpOverload) and target.namespace == "qir" and target._opname == "call_module"


def _verify_imported(program: Program) -> None:
    """Check every imported op against its schema; a failure names the op and its source."""
    from xdsl.utils.exceptions import VerifyException

    from qir.errors import describe_op

    for op in program.forward.body.ops:
        try:
            if isinstance(op, AtenOp):
                op.verify_schema()  # the ops are well-formed by construction: check the schema only
        except VerifyException as err:
            raise UnsupportedError(f"{describe_op(op)}: {err}") from None


_NOT_WORD = re.compile(r"\W")


def _valid_name(name: str) -> str:
    return _NOT_WORD.sub("_", name)
