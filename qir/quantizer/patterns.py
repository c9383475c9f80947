"""Annotation by patterns of ATen ops: the engine behind the built-in quantizers.

One forward walk over `@forward`. At each op not yet annotated, the first
pattern that matches it annotates a whole unit: a conv or linear with the
ops fused into it (add, relu, hardtanh), a binary op, a cat, a pooling, a
fixed-range activation, or a shape op that just carries its input's
quantization along. Inside a fusion unit the intermediate values carry no
spec, so no quantize/dequantize is ever placed between fused ops.

A pattern matches op identity (the ATen operator name) and dataflow only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

import torch
from xdsl.dialects.builtin import AnyFloat, ModuleOp, TensorType, f32
from xdsl.ir import Attribute, Operation, SSAValue

from qir.batch_norm import qat_batch_norm
from qir.dialects.aten import AtenOp, ParamOp
from qir.dialects.obs import SharedSpecAttr
from qir.quantizer.base import (
    ConfigurableQuantizer,
    OperatorPattern,
    annotation,
    is_annotated,
    set_annotation,
    warn_if_nothing,
)
from qir.quantizer.annotation_pattern import AnnotationPattern
from qir.quantizer.spec import FixedQParamsQuantizationSpec, QuantizationConfig, Spec, spec_attr

from qir.op_families import BATCH_NORMS, CONV, CONV_TRANSPOSE, HARDSWISH, LINEAR, MATMUL, POOLING, RELU_LIKE

BINARY = {"add", "mul"}
SHAPE = {"flatten", "view", "reshape", "_unsafe_view", "permute", "transpose", "squeeze",
         "unsqueeze", "t", "contiguous", "clone", "expand", "slice", "select", "chunk", "split",
         "split_with_sizes", "unbind", "pixel_shuffle", "narrow"}
# Output ranges fixed by the function: its parameters follow from the range and the storage's
# (sigmoid on uint8 [0, 255]: 1/256 and 0; tanh on int8: 2/256 and 0; on uint8 [0, 127]: 2/128 and 64).
FIXED_RANGES = {
    "sigmoid": (0.0, 1.0), "hardsigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "_softmax": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
}


def fixed_qparams(low: float, high: float, quant_min: int, quant_max: int) -> tuple[float, int]:
    """The scale and zero point that spread [low, high) over the storage range exactly."""
    levels = quant_max - quant_min + 1
    scale = (high - low) / levels
    return scale, quant_min + round(-low / scale)


SHARED_INPUT = SharedSpecAttr("operand", 0)

FULL_RANGE_SHARE = 0.02
"""The default `PatternQuantizer.full_range_share` (see there)."""

# The ATen operators behind each part of a pattern name.
_OP_NAMES = {
    "conv": CONV, "conv_transpose": CONV_TRANSPOSE, "linear": LINEAR, "matmul": MATMUL,
    "add": {"add", "add_"}, "mul": {"mul", "mul_"}, "relu": RELU_LIKE, "hardswish": HARDSWISH,
    "pool": POOLING, "view": SHAPE, "softmax": {"softmax", "_softmax"}, "sigmoid": {"sigmoid", "hardsigmoid"},
}


def _single_user(value: SSAValue) -> Operation | None:
    users = {use.operation for use in value.uses}
    return users.pop() if len(users) == 1 else None


def _is_param(value: SSAValue) -> bool:
    return isinstance(value.owner, ParamOp)


def _tensor_operands(op: AtenOp) -> list[int]:
    return [i for i, v in enumerate(op.operands) if isinstance(v.type, TensorType)]


class PatternQuantizer(ConfigurableQuantizer):
    """A configurable quantizer whose patterns are a subset of the ones below.

    `patterns` names the enabled patterns (see `PATTERNS`); a backend enables
    what its kernels run."""

    PATTERNS: dict[str, tuple[str, ...]] = {
        "conv": ("conv",), "conv_relu": ("conv", "relu"), "conv_add": ("conv", "add"),
        "conv_add_relu": ("conv", "add", "relu"), "conv_transpose": ("conv_transpose",),
        "conv_transpose_relu": ("conv_transpose", "relu"),
        "linear": ("linear",), "linear_relu": ("linear", "relu"), "matmul": ("matmul",),
        "add": ("add",), "add_relu": ("add", "relu"), "mul": ("mul",), "cat": ("cat",),
        "pooling": ("pool",), "relu": ("relu",), "hardswish": ("hardswish",),
        "fixed_qparams": ("sigmoid", "tanh", "softmax"), "shape": ("view",),
    }

    def __init__(self, global_config: QuantizationConfig | None, patterns: Sequence[str | AnnotationPattern], *,
                 per_tensor_transposed_weights: bool = False, int16_pairs: bool = False, target=None,
                 full_range_share: float = FULL_RANGE_SHARE):
        """`patterns`: names of built-in patterns (`PATTERNS`) and a backend's own
        `AnnotationPattern`s, which are tried first, in the order given."""
        super().__init__(global_config)
        self.full_range_share = full_range_share
        """With `int16_pairs`: cheap convs and linears (each under a quarter of the average layer's
        work, cheapest first), together at most this share of the model's multiply-accumulates,
        keep full-range weights instead of fitted ones. Those whose weights could saturate then
        run in float on the target, at full precision and exactly as the program says: a
        ResNet's classifier and 1x1 shortcut convs are 1% of its work but most of what fitting
        would cost in accuracy."""
        self._full_range: set[Operation] = set()
        self.target = target
        """The `qir.target.Target` the specs are made for (recorded on the module), or None."""
        self.int16_pairs = int16_pairs
        """Fit conv and linear weights read with uint8 activations to kernels that add pairs of
        products in int16 (x86 targets without VNNI): their weight specs get `int16_pairs`."""
        self.custom_patterns: tuple[AnnotationPattern, ...] = tuple(
            p for p in patterns if isinstance(p, AnnotationPattern))
        """The backend's own patterns among `patterns` (see `AnnotationPattern`)."""
        names = [p for p in patterns if not isinstance(p, AnnotationPattern)]
        unknown = set(names) - set(self.PATTERNS)
        if unknown:
            raise ValueError(f"unknown patterns {sorted(unknown)}")
        clashes = [p.name for p in self.custom_patterns if p.name in self.PATTERNS]
        if clashes or len({p.name for p in self.custom_patterns}) < len(self.custom_patterns):
            raise ValueError(f"annotation patterns must have names of their own (not a built-in one's, not "
                             f"twice): {sorted(p.name for p in self.custom_patterns)}")
        self.patterns = tuple(names) + tuple(p.name for p in self.custom_patterns)
        """The names of the enabled patterns, built-in and the backend's own."""
        self.per_tensor_transposed_weights = per_tensor_transposed_weights
        """Quantize transposed-conv weights per tensor even when the config says per channel
        (fbgemm and oneDNN have no per-channel transposed convolution; torch.ao's x86 qconfig
        mapping does the same)."""

    def get_supported_operators(self) -> list[OperatorPattern]:
        custom = {p.name: p for p in self.custom_patterns}
        return [OperatorPattern(p, tuple(sorted(custom[p].ops)) if p in custom else self.PATTERNS[p])
                for p in self.patterns]

    def supported_op_names(self) -> set[str]:
        """The ATen operators the enabled patterns may annotate."""
        names: set[str] = set()
        for pattern in self.patterns:
            for part in self.PATTERNS.get(pattern, ()):
                names |= _OP_NAMES.get(part, {part})
        for custom in self.custom_patterns:
            names |= set(custom.ops)
        if names & (CONV | CONV_TRANSPOSE | LINEAR):
            names |= BATCH_NORMS  # the training batch norm of a QAT unit
        return names

    def validate(self, program) -> None:
        """Every annotated op is one this quantizer's patterns cover, quantized to a storage
        type its specs use; anything else (an annotation edited by hand, or written by another
        quantizer) is an error naming the op."""
        from qir.errors import QirError, describe_op

        supported = self.supported_op_names()
        storages = {s.to_attr().storage.data for config in self.configs() if config is not None
                    for s in (config.input_activation, config.output_activation, config.weight) if s is not None}
        for op in program.module.walk():
            if not isinstance(op, AtenOp) or not is_annotated(op):
                continue
            if op.op_name not in supported:
                raise QirError(f"{describe_op(op)}: {type(self).__name__} has no quantized {op.op_name}")
            for spec in annotation(op, "qin") + annotation(op, "qout"):
                storage = getattr(getattr(spec, "storage", None), "data", None)
                if storages and storage is not None and storage not in storages | {"i32"}:
                    raise QirError(f"{describe_op(op)}: {type(self).__name__} does not quantize to {storage}")

    def annotate_module(self, module: ModuleOp) -> Counter:
        counts: Counter = Counter()
        matchers: list[Callable[[AtenOp, QuantizationConfig], str | None]] = [
            *(partial(self._custom, pattern) for pattern in self.custom_patterns),
            self._conv_or_linear, self._matmul, self._binary, self._cat, self._fixed,
            self._hardswish, self._propagating,
        ]
        kept = {pattern.name for pattern in self.custom_patterns if not pattern.optional}
        ops = [op for op in module.walk() if isinstance(op, AtenOp)]
        self._full_range = _cheapest(ops, self.full_range_share) if self.int16_pairs else set()
        optional: list[AtenOp] = []
        not_float32: list[tuple[AtenOp, Attribute]] = []
        for op in ops:
            if is_annotated(op):
                continue
            config = self.config_for(op)
            if config is None:
                continue
            if not _computes_in_float(op):  # integer arithmetic (position ids, masks): nothing to quantize
                continue
            other = _other_float_type(op)
            if other is not None:  # quantized types express float32: the op stays as it is
                not_float32.append((op, other))
                continue
            for match in matchers:
                name = match(op, config)
                if name is not None:
                    counts[name] += 1
                    if name not in ("mul", "mul_relu", *kept) and match != self._conv_or_linear:
                        optional.append(op)
                    break
        counts["pruned"] = _prune(ops, set(optional))
        if not counts["pruned"]:
            del counts["pruned"]
        if not_float32 and not sum(counts.values()):
            from qir.errors import UnsupportedError, describe_op

            op, element = not_float32[0]
            raise UnsupportedError(
                f"{describe_op(op)} computes in {element}: {type(self).__name__} quantizes float32 "
                "computation only and found nothing else to quantize (quantize `model.float()` "
                "with float32 inputs)")
        warn_if_nothing(counts, self)
        self.warn_unmatched(module)
        if not_float32:
            counts["left float: not float32"] = len(not_float32)
        return counts

    # -- for annotation patterns (a backend's own, `AnnotationPattern`) ---------

    def set_specs(self, op: Operation, inputs: dict[int, Spec | None] | None = None,
                  outputs: dict[int, Spec | None] | None = None) -> None:
        """Annotate `op`: the specs (`QuantizationSpec`, `SharedQuantizationSpec`, ...; None for
        an edge inside a fusion unit, left float) of the operands and results given by index.
        Only floating-point values get one: an integer operand (indices, a mask) is never
        quantized."""
        self._set(op, {i: spec_attr(s) for i, s in (inputs or {}).items()},
                  {i: spec_attr(s) for i, s in (outputs or {}).items()})

    def fusable(self, value: SSAValue, names: set[str]) -> AtenOp | None:
        """The single consumer of `value`, when it is one of the ATen operators `names`, reads
        `value` as its first operand, is configured and not annotated yet: the next op of a
        fusion unit."""
        return self._fusable(value, names)

    @staticmethod
    def quantized(value: SSAValue) -> bool:
        """Whether the op producing `value` quantizes it (its output spec is set)."""
        return _quantized(value)

    def _custom(self, pattern: AnnotationPattern, op: AtenOp, config: QuantizationConfig) -> str | None:
        return pattern.name if pattern.annotate(self, op, config) else None

    # -- helpers ------------------------------------------------------------

    def _enabled(self, name: str) -> bool:
        return name in self.patterns

    def _fusable(self, value: SSAValue, names: set[str]) -> AtenOp | None:
        """The single consumer of `value` if it is one of `names`, configured, not yet annotated."""
        user = _single_user(value)
        if (isinstance(user, AtenOp) and user.op_name in names and not is_annotated(user)
                and self.config_for(user) is not None and user.operands[0] is value):
            return user
        return None

    @staticmethod
    def _set(op: Operation, inputs: dict[int, Attribute | None], outputs: dict[int, Attribute | None]):
        """Annotate `op`; only floating-point values get specs (an integer operand, such as the
        indices of an embedding or a mask multiplied in, is never quantized)."""
        qin, qout = annotation(op, "qin"), annotation(op, "qout")
        for i, spec in inputs.items():
            qin[i] = spec if spec is None or _is_float_tensor(op.operands[i]) else None
        for i, spec in outputs.items():
            qout[i] = spec if spec is None or _is_float_tensor(op.results[i]) else None
        set_annotation(op, "qin", qin)
        set_annotation(op, "qout", qout)

    def _relu_tail(self, value: SSAValue) -> AtenOp | None:
        return self._fusable(value, RELU_LIKE)

    def _fitted_to_int16_pairs(self, weight, activation):
        """`weight` with `int16_pairs` set to the activations' largest storage value, when this
        quantizer fits weights to int16 pairs and the kernel multiplies uint8 by int8. A dynamic
        int8 input runs on x86's uint8 kernels as `q + 128` (`x86.dynamic_linear` shifts it so):
        its weights are fitted to inputs up to `qmax + 128`, whichever quantizer's config it is."""
        if not self.int16_pairs or weight is None or activation is None or weight.int16_pairs \
                or weight.dtype != torch.int8:
            return weight
        if activation.dtype == torch.uint8:
            return replace(weight, int16_pairs=activation.quant_max if activation.quant_max is not None else 255)
        if activation.dtype == torch.int8 and activation.is_dynamic:
            return replace(weight, int16_pairs=(127 if activation.quant_max is None else activation.quant_max) + 128)
        return weight

    # -- patterns -------------------------------------------------------------

    def _conv_or_linear(self, op: AtenOp, config: QuantizationConfig) -> str | None:
        name = op.op_name
        if name in CONV and self._enabled("conv"):
            kind, axis = "conv", 0
        elif name in CONV_TRANSPOSE and self._enabled("conv_transpose"):
            kind, axis = "conv_transpose", 1
        elif name in LINEAR and self._enabled("linear"):
            kind, axis = "linear", 0
        else:
            return None
        if len(op.operands) < 2 or not _is_param(op.operands[1]) or not op.results:
            return None
        weight = config.weight
        if weight is not None and weight.per_channel and kind == "conv_transpose" and self.per_tensor_transposed_weights:
            weight = replace(weight, qscheme=torch.per_tensor_symmetric, ch_axis=None, observer="minmax")
        elif weight is not None and weight.per_channel and weight.ch_axis in (None, 0) and axis != 0:
            weight = replace(weight, ch_axis=axis)
        if op not in self._full_range and not (kind == "conv" and int(op.arg("groups", 1)) > 1):
            weight = self._fitted_to_int16_pairs(weight, config.input_activation)  # grouped convs: exact
        activation = config.linear_input() if kind == "linear" else config.input_activation
        inputs = {0: spec_attr(activation), 1: spec_attr(weight)}
        if len(op.operands) > 2 and _is_param(op.operands[2]):
            inputs[2] = spec_attr(config.bias)
        unit = [op]
        pattern = kind
        # QAT: the training batch norm after it is part of the unit (`simulate-bn` trains the two
        # as their folded form; PTQ has folded it already).
        bn = qat_batch_norm(op)
        if bn is not None and not is_annotated(bn) and self.config_for(bn) is not None:
            unit.append(bn)
        add = None
        if kind == "conv" and self._enabled("conv_add"):
            add = self._fusable(unit[-1].results[0], {"add", "add_"})
            if add is not None and len(_tensor_operands(add)) == 2 and add.kwargs is None:
                unit.append(add)
                pattern += "_add"
            else:
                add = None
        tail = self._relu_tail(unit[-1].results[0]) if self._enabled(f"{pattern}_relu") else None
        if tail is not None:
            unit.append(tail)
            pattern += "_relu"
        self._set(op, inputs, {0: None if len(unit) > 1 else spec_attr(config.output_activation)})
        if len(unit) > 1 and unit[1] is not add and unit[1] is not tail:  # the batch norm
            self._set(unit[1], {}, {0: None if len(unit) > 2 else spec_attr(config.output_activation)})
        if add is not None:
            self._set(add, {1: spec_attr(config.input_activation)},
                      {0: None if tail is not None else spec_attr(config.output_activation)})
        if tail is not None:
            self._set(tail, {}, {0: spec_attr(config.output_activation)})
        return pattern.replace(kind, f"{kind}_bn", 1) if len(unit) > 1 and unit[1] is bn else pattern

    def _matmul(self, op: AtenOp, config: QuantizationConfig) -> str | None:
        if op.op_name not in MATMUL or not self._enabled("matmul") or not _all_quantized(op):
            return None
        act = spec_attr(config.input_activation)
        self._set(op, {0: act, 1: act}, {0: spec_attr(config.output_activation)})
        return "matmul"

    def _binary(self, op: AtenOp, config: QuantizationConfig) -> str | None:
        name = op.op_name.rstrip("_")
        if name not in BINARY or not self._enabled(name) or len(_tensor_operands(op)) != 2:
            return None
        # A mul of two same-shaped tensors is worth quantizing on its own (an int8 kernel, as in
        # torchao's x86 recipe); an add only when its inputs are quantized already.
        same_shape = op.operands[0].type == op.operands[1].type
        if not (name == "mul" and same_shape) and not _all_quantized(op):
            return None
        if op.kwargs is not None:  # add(x, y, alpha=...) has no quantized kernel
            return None
        act = spec_attr(config.input_activation)
        tail = self._relu_tail(op.results[0]) if self._enabled(f"{name}_relu") else None
        self._set(op, {0: act, 1: act}, {0: None if tail else spec_attr(config.output_activation)})
        if tail is not None:
            self._set(tail, {}, {0: spec_attr(config.output_activation)})
            return f"{name}_relu"
        return name

    def _cat(self, op: AtenOp, config: QuantizationConfig) -> str | None:
        if op.op_name != "cat" or not self._enabled("cat") or len(op.operands) < 1 or not _all_quantized(op):
            return None
        inputs = {0: spec_attr(config.input_activation)}
        inputs.update({i: SHARED_INPUT for i in range(1, len(op.operands))})
        self._set(op, inputs, {0: SHARED_INPUT})
        return "cat"

    def _fixed(self, op: AtenOp, config: QuantizationConfig) -> str | None:
        bounds = FIXED_RANGES.get(op.op_name)
        act = config.output_activation
        if (bounds is None or not self._enabled("fixed_qparams") or act is None
                or act.dtype not in (torch.uint8, torch.int8)):
            return None
        if not _quantized(op.operands[0]):
            return None
        storage = act.to_attr()
        scale, zero_point = fixed_qparams(*bounds, storage.qmin.data, storage.qmax.data)
        fixed = FixedQParamsQuantizationSpec(act.dtype, scale, zero_point, act.quant_min, act.quant_max)
        self._set(op, {0: spec_attr(config.input_activation)}, {0: fixed.to_attr()})
        return "fixed_qparams"

    def _hardswish(self, op: AtenOp, config: QuantizationConfig) -> str | None:
        if op.op_name not in HARDSWISH or not self._enabled("hardswish") or not _quantized(op.operands[0]):
            return None
        self._set(op, {0: spec_attr(config.input_activation)}, {0: spec_attr(config.output_activation)})
        return "hardswish"

    def _propagating(self, op: AtenOp, config: QuantizationConfig) -> str | None:
        """Ops that keep their input's parameters (pooling, relu, views): quantized only when
        their input already is, so they never add a quantization step of their own."""
        name = op.op_name
        if name in POOLING:
            pattern = "pooling"
        elif name in RELU_LIKE:
            pattern = "relu"
        elif name in SHAPE:
            pattern = "shape"
        else:
            return None
        if not self._enabled(pattern) or not op.operands or not _quantized(op.operands[0]):
            return None
        element = getattr(op.operands[0].type, "element_type", None)
        tensor_results = [i for i, r in enumerate(op.results)
                          if isinstance(r.type, TensorType) and r.type.element_type == element]
        self._set(op, {}, {i: SHARED_INPUT for i in tensor_results})
        return pattern


def _multiply_accumulates(op: AtenOp) -> int:
    """A conv's or linear's multiply-accumulates per call (dynamic dimensions counted as 1)."""
    result, weight = op.results[0].type, op.operands[1].type
    if not isinstance(result, TensorType) or not isinstance(weight, TensorType) or result.get_shape() == ():
        return 0
    out = [max(d, 1) for d in result.get_shape()]
    channels = out[1] if op.op_name in CONV | CONV_TRANSPOSE and len(out) > 1 else out[-1]
    numel = 1
    for d in out:
        numel *= d
    return numel * weight.element_count() // max(channels, 1)


def _cheapest(ops: list[AtenOp], share: float) -> set[Operation]:
    """The cheap convs and linears with constant weights (each under a quarter of the average
    layer's multiply-accumulates: a classifier, a shortcut, a pooler; in a network of equal
    layers, none), cheapest first, adding up to at most `share` of all of theirs."""
    layers = [op for op in ops if op.op_name in CONV | CONV_TRANSPOSE | LINEAR and len(op.operands) > 1
              and _is_param(op.operands[1]) and op.results]
    costs = sorted((_multiply_accumulates(op), i, op) for i, op in enumerate(layers))
    total = sum(cost for cost, _, _ in costs)
    budget = share * total
    chosen: set[Operation] = set()
    for cost, _, op in costs:
        if cost > budget or 4 * cost * len(costs) >= total:
            break
        budget -= cost
        chosen.add(op)
    return chosen


def _is_float_tensor(value: SSAValue) -> bool:
    return isinstance(value.type, TensorType) and isinstance(value.type.element_type, AnyFloat)


def _computes_in_float(op: AtenOp) -> bool:
    """Whether a tensor result of `op` is floating point (or it has no tensor result): an op
    on integers (RoBERTa's position ids, `(cumsum(mask) + 0) * mask` in int32) is left alone
    by every pattern."""
    results = [r for r in op.results if isinstance(r.type, TensorType)]
    return not results or any(_is_float_tensor(r) for r in results)


def _other_float_type(op: AtenOp) -> Attribute | None:
    """The first floating-point element type other than f32 among the op's tensor operands and
    results (float64, float16, bfloat16), or None: such an op has no float32 value for a
    `!quant.uniform<...:f32>` type to express, so the pattern quantizers leave it float."""
    for value in (*op.operands, *op.results):
        element = getattr(value.type, "element_type", None)
        if isinstance(value.type, TensorType) and isinstance(element, AnyFloat) and element != f32:
            return element
    return None


def _all_quantized(op: AtenOp) -> bool:
    """Whether every tensor input of `op` arrives quantized: ops other than conv and linear are
    quantized only then, so that they never add a quantization step of their own."""
    return all(_quantized(op.operands[i]) for i in _tensor_operands(op))


def _consumed_quantized(value: SSAValue) -> bool:
    """Whether some consumer reads `value` quantized: its input edge has a spec, or it passes
    the value's parameters on to an output that is itself kept quantized."""
    for use in value.uses:
        consumer = use.operation
        if annotation(consumer, "qin")[use.index] is not None:
            return True
        for spec in annotation(consumer, "qout"):
            if isinstance(spec, SharedSpecAttr) and spec.kind.data == "operand" and spec.index.data == use.index:
                return True
    return False


def _prune(ops: list[AtenOp], optional: set[AtenOp]) -> int:
    """Drop output specs nobody reads quantized, and then the optional ops (everything but
    conv/linear units) whose outputs are no longer quantized: a quantize/dequantize pair in front
    of a float op only adds error (torchao's int8-in/int8-out rule). Consumers come after
    producers, so one walk backwards reaches the fixed point."""
    pruned = 0
    for op in reversed(ops):
        qout = annotation(op, "qout")
        if any(spec is not None for spec in qout):
            qout = [spec if spec is not None and _consumed_quantized(r) else None
                    for spec, r in zip(qout, op.results)]
            set_annotation(op, "qout", qout)
        if op in optional and all(spec is None for spec in qout) and not _tail_kept(op):
            set_annotation(op, "qin", [None] * len(op.operands))
            pruned += 1
    return pruned


def _tail_kept(op: AtenOp) -> bool:
    """Whether `op` heads a fusion unit whose tail (a relu that quantizes the unit's output and
    reads nothing quantized itself) kept its output spec: the unit stays, head included."""
    tail = _single_user(op.results[0]) if op.results else None
    return (tail is not None and any(spec is not None for spec in annotation(tail, "qout"))
            and all(spec is None for spec in annotation(tail, "qin")))


def _quantized(value: SSAValue) -> bool:
    """Whether the producer of `value` quantizes it (its `qout` entry for it is set)."""
    owner = value.owner
    if not isinstance(owner, AtenOp):
        return False
    return annotation(owner, "qout")[value.index] is not None
