"""The Quantizer interface: annotate a program's ops with quantization specs.

A quantizer writes `qin`/`qout` attributes (see the `obs` dialect) on the ops
it quantizes; nothing else. It matches ops by identity (the ATen operator) and
dataflow (who feeds whom), never by FX metadata, so it keeps working as
torch.export's metadata changes (torchao's X86InductorQuantizer silently
annotates nothing since torch 2.10, pytorch/ao#3914).

Configuration follows PT2E: `set_global`, `set_object_type` (a module class or
a functional such as `torch.nn.functional.linear`), `set_module_name` (a
module path; `None` leaves that part in float), most specific first; and, as
torch.ao's `QConfigMapping.set_module_name_regex`, `set_module_name_regex` (every
module whose path matches a pattern: one recipe for all of a model's layers of one
role, `r"encoder\.layer\.\d+\.intermediate\.dense"`).
"""

from __future__ import annotations

import re
import warnings
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import ArrayAttr, ModuleOp, NoneAttr, StringAttr
from xdsl.ir import Attribute, Operation

from qir.dialects.aten import AtenOp
from qir.quantizer.spec import QuantizationConfig

@dataclass(frozen=True)
class OperatorPattern:
    """One entry of `get_supported_operators()`: a named pattern of ATen ops, quantized as a unit."""

    name: str
    ops: tuple[str, ...]


class Quantizer(ABC):
    """Annotates ops of a program. Subclasses implement `annotate_module`."""

    def annotate(self, program):
        """Annotate `program` in place (the `annotate` pass runs this on a copy); returns it."""
        self.annotate_module(program.module)
        annotate_custom_modules(self, program.module)
        return program

    @abstractmethod
    def annotate_module(self, module: ModuleOp) -> Counter:
        """Annotate the ops of `module`; returns how many units of each pattern were annotated."""

    def validate(self, program) -> None:
        """Raise if the annotations on `program` are not ones this quantizer's backend can run."""

    def get_supported_operators(self) -> list[OperatorPattern]:
        return []

    def custom_module_config(self, op: Operation) -> QuantizationConfig | None:
        """The config of a custom module's boundary (a `custom.call custom` op: a module the user
        replaces by a quantized form of their own): its float inputs are observed with the
        config's input activation spec and its float outputs with the output one, as FX mode
        observes a custom module. None (here, by default) leaves the module float."""
        return None


def annotation(op: Operation, key: str) -> list[Attribute | None]:
    """The `qin` or `qout` entries of `op` (None for `none` or when absent)."""
    count = len(op.operands) if key == "qin" else len(op.results)
    attr = op.attributes.get(key)
    if not isinstance(attr, ArrayAttr):
        return [None] * count
    return [None if isinstance(a, NoneAttr) else a for a in attr.data]


def set_annotation(op: Operation, key: str, entries: Sequence[Attribute | None]) -> None:
    if all(e is None for e in entries):
        op.attributes.pop(key, None)
    else:
        op.attributes[key] = ArrayAttr([_NONE if e is None else e for e in entries])


_NONE = NoneAttr()


def is_annotated(op: Operation) -> bool:
    return "qin" in op.attributes or "qout" in op.attributes


def _qualified_name(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


# Functionals and torch functions a user may pass to `set_object_type`, by the ATen ops they become.
_FUNCTIONAL_OPS = {
    "linear": {"linear"}, "conv1d": {"conv1d"}, "conv2d": {"conv2d"}, "conv3d": {"conv3d"},
    "conv_transpose1d": {"conv_transpose1d"}, "conv_transpose2d": {"conv_transpose2d"},
    "relu": {"relu", "relu_"}, "hardtanh": {"hardtanh", "hardtanh_"}, "relu6": {"hardtanh"},
    "hardswish": {"hardswish", "hardswish_"}, "add": {"add", "add_"}, "mul": {"mul", "mul_"},
    "matmul": {"matmul"}, "bmm": {"bmm"}, "cat": {"cat"}, "max_pool2d": {"max_pool2d"},
    "avg_pool2d": {"avg_pool2d"}, "adaptive_avg_pool2d": {"adaptive_avg_pool2d"},
    "sigmoid": {"sigmoid"}, "tanh": {"tanh"}, "softmax": {"softmax", "_softmax"},
}


class ConfigurableQuantizer(Quantizer):
    """A quantizer configured per module path, per path pattern, per module/functional type, and
    globally, in that order of precedence (torch.ao's `QConfigMapping` order). A custom module's
    boundary takes the config that applies to it (`custom_module_config`)."""

    def __init__(self, global_config: QuantizationConfig | None = None):
        self.global_config = global_config
        self.object_type_configs: dict[str, QuantizationConfig | None] = {}
        self.module_name_configs: dict[str, QuantizationConfig | None] = {}
        self.module_name_regex_configs: dict[re.Pattern, QuantizationConfig | None] = {}

    def set_global(self, config: QuantizationConfig | None):
        self.global_config = config
        return self

    def set_object_type(self, object_type: type | Callable | str, config: QuantizationConfig | None):
        """Configure every op coming from a module class (`torch.nn.Conv2d`) or a functional
        (`torch.nn.functional.linear`, `torch.add`)."""
        if isinstance(object_type, type):
            key = "module:" + _qualified_name(object_type)
        else:
            name = object_type if isinstance(object_type, str) else object_type.__name__
            if name not in _FUNCTIONAL_OPS:
                raise ValueError(f"set_object_type: unknown functional {name!r} "
                                 f"(known: {', '.join(sorted(_FUNCTIONAL_OPS))})")
            key = "fn:" + name
        self.object_type_configs[key] = config
        return self

    def set_module_name(self, module_name: str, config: QuantizationConfig | None):
        """Configure every op under the module path `module_name`; None leaves it in float."""
        self.module_name_configs[module_name] = config
        return self

    def set_module_name_regex(self, pattern: str, config: QuantizationConfig | None):
        """Configure every op under a module whose whole path matches `pattern` (`re.fullmatch`):
        `r"encoder\.layer\.\d+\.output\.dense"` names that linear in every layer. Patterns are
        tried in the order they were set, the first match wins; a `set_module_name` path is more
        specific than any pattern, a pattern more than a type. None leaves the matched parts float."""
        try:
            compiled = re.compile(pattern)
        except re.error as err:
            raise ValueError(f"set_module_name_regex: {pattern!r} is not a regular expression: {err}") from None
        self.module_name_regex_configs[compiled] = config
        return self

    def custom_module_config(self, op: Operation) -> QuantizationConfig | None:
        return self.config_for(op)

    def configs(self) -> list[QuantizationConfig | None]:
        """Every config set: the global one, per type, per path and per pattern."""
        return [self.global_config, *self.object_type_configs.values(), *self.module_name_configs.values(),
                *self.module_name_regex_configs.values()]

    def warn_unmatched(self, module: ModuleOp) -> None:
        """Warn about each `set_module_name` path and pattern that names no module of the program:
        a misspelt path (or one written for a wrapper the exported model does not have) would
        otherwise configure nothing, silently. The warning shows a path the program has."""
        if not (self.module_name_configs or self.module_name_regex_configs):
            return
        paths = {path for op in module.walk() if (path := _str_attr(op, "module")) is not None}
        modules = {prefix for path in paths for prefix in _prefixes(path)}
        missing = [repr(name) for name in self.module_name_configs if name and name not in modules]
        missing += [f'pattern r"{p.pattern}"' for p in self.module_name_regex_configs
                    if not any(p.fullmatch(m) for m in modules)]
        if missing:
            example = f" (its modules are named like {max(sorted(paths), key=len)!r})" if paths else ""
            warnings.warn(f"{type(self).__name__}: {', '.join(missing)} name{'s' if len(missing) == 1 else ''} no "
                          f"module of the program{example}: that configuration applies to nothing",
                          UserWarning, stacklevel=4)

    def config_for(self, op: Operation) -> QuantizationConfig | None:
        """The config that applies to `op`, most specific first."""
        path = _str_attr(op, "module")
        if path is not None and self.module_name_configs:
            best = None
            for name in self.module_name_configs:
                if name == "" or path == name or path.startswith(name + "."):
                    if best is None or len(name) > len(best):
                        best = name
            if best is not None:
                return self.module_name_configs[best]
        if path is not None and self.module_name_regex_configs:
            for pattern, config in self.module_name_regex_configs.items():
                if any(pattern.fullmatch(prefix) for prefix in _prefixes(path)):
                    return config
        module_type = _str_attr(op, "module_type")
        if module_type is not None:
            for key in ("module:" + module_type, "module:" + _public_name(module_type)):
                if key in self.object_type_configs:
                    return self.object_type_configs[key]
        if isinstance(op, AtenOp):
            for key, config in self.object_type_configs.items():
                if key.startswith("fn:") and op.op_name in _FUNCTIONAL_OPS[key[3:]]:
                    return config
        return self.global_config


def _prefixes(path: str) -> list[str]:
    """`a.b.c` → `a.b.c`, `a.b`, `a`: the modules an op at `path` is under, innermost first (a
    pattern naming a module configures the ops of its submodules too, as a path does)."""
    parts = path.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _public_name(qualified: str) -> str:
    """`torch.nn.modules.conv.Conv2d` → `torch.nn.Conv2d` (how users usually name it)."""
    parts = qualified.split(".")
    if parts[:3] == ["torch", "nn", "modules"] and len(parts) == 5:
        return f"torch.nn.{parts[-1]}"
    return qualified


def _str_attr(op: Operation, key: str) -> str | None:
    attr = op.attributes.get(key)
    return attr.data if isinstance(attr, StringAttr) else None


class ComposableQuantizer(Quantizer):
    """Several quantizers in order; each annotates only what the ones before left alone."""

    def __init__(self, quantizers: Iterable[Quantizer]):
        self.quantizers = list(quantizers)
        self._annotated: tuple[ModuleOp, list[set[Operation]]] | None = None
        """The module last annotated, and the ops each quantizer annotated in it."""

    def annotate_module(self, module: ModuleOp) -> Counter:
        counts: Counter = Counter()
        before = {op for op in module.walk() if is_annotated(op)}
        owned: list[set[Operation]] = []
        for q in self.quantizers:
            counts.update(q.annotate_module(module))
            after = {op for op in module.walk() if is_annotated(op)}
            owned.append(after - before)
            before = after
        self._annotated = (module, owned)
        return counts

    def validate(self, program) -> None:
        """Each quantizer validates what it annotated (an X86Quantizer knows no weight-only
        embedding, a WeightOnlyQuantizer no static conv); on a module it did not annotate here,
        each validates every annotation."""
        if self._annotated is None or self._annotated[0] is not program.module:
            for q in self.quantizers:
                q.validate(program)
            return
        for q, owned in zip(self.quantizers, self._annotated[1]):
            validate_owned(q, program, owned)

    def custom_module_config(self, op: Operation) -> QuantizationConfig | None:
        return next((c for q in self.quantizers if (c := q.custom_module_config(op)) is not None), None)

    def get_supported_operators(self) -> list[OperatorPattern]:
        seen: dict[str, OperatorPattern] = {}
        for q in self.quantizers:
            for pattern in q.get_supported_operators():
                seen.setdefault(pattern.name, pattern)
        return list(seen.values())


def validate_owned(quantizer: Quantizer, program, owned: set[Operation] | None) -> None:
    """`quantizer.validate(program)` over the annotations of the `owned` ops only: the others,
    written by another quantizer (a composition), are hidden while it looks. `owned` None: all
    of them are its own (nothing to hide, no walk over the program to find what)."""
    hidden = {} if owned is None else {
        op: {k: op.attributes.pop(k) for k in ("qin", "qout") if k in op.attributes}
        for op in program.module.walk() if is_annotated(op) and op not in owned}
    try:
        quantizer.validate(program)
    finally:
        for op, attrs in hidden.items():
            op.attributes.update(attrs)


def annotate_custom_modules(quantizer: Quantizer, module: ModuleOp) -> int:
    """Annotate the boundary of each custom module that has a quantized replacement (`custom.call
    custom`) with the activation specs of `quantizer.custom_module_config`: its float32 inputs and
    outputs, per tensor, statically (a config without static per-tensor activation specs, or
    None, leaves the module float). Returns how many modules were annotated."""
    from xdsl.dialects.builtin import TensorType, f32

    from qir.dialects.custom import CallOp
    from qir.quantizer.spec import QuantizationSpec

    def static(spec) -> bool:
        return isinstance(spec, QuantizationSpec) and not spec.is_dynamic and not spec.per_channel

    def float32(value) -> bool:
        return isinstance(value.type, TensorType) and value.type.element_type == f32

    annotated = 0
    for op in module.walk():
        if not isinstance(op, CallOp) or op.form_name != "custom" or is_annotated(op):
            continue
        config = quantizer.custom_module_config(op)
        if config is None or not (static(config.input_activation) and static(config.output_activation)):
            continue
        inputs, outputs = config.input_activation.to_attr(), config.output_activation.to_attr()
        set_annotation(op, "qin", [inputs if float32(v) else None for v in op.operands])
        set_annotation(op, "qout", [outputs if float32(r) else None for r in op.results])
        annotated += is_annotated(op)
    return annotated


def warn_if_nothing(counts: Counter, quantizer: Quantizer) -> None:
    if not sum(counts.values()):
        warnings.warn(f"{type(quantizer).__name__} annotated no op: the model will stay in float",
                      stacklevel=3)
