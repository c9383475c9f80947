"""What a backend can run: the capability table (the BackendConfig of torch.ao's
custom-backend RFC), and the quantizer derived from it.

A table lists, per `ref` op, the storage types, weight schemes, fused post ops
and shapes the backend's kernels take. Two things are derived from it, so that
they can never disagree with the kernels:

* `accepts(op)`: whether `reference-rewrite{backend=...}` may produce this
  `ref` op (what a backend refuses stays in the Q/DQ form, run in float);
* `quantizer()`: the annotation patterns and specs a user gets with
  `qir.quantize(..., quantizer=None)` (and `annotate{quantizer=NAME}`), so a
  user cannot ask for what the backend cannot run.

A backend with kernels of its own brings what the built-in quantizer patterns
do not know: its quantization config (`table(..., config=...)`) and its own
annotation patterns (`qir.quantizer.AnnotationPattern`: a fusion unit and the
specs of its edges), per op (`OpCapability(..., patterns=...)`) or for the
table (`table(..., patterns=...)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from xdsl.ir import Operation

from qir.dialects import ref
from qir.dialects.quant import UniformQuantizedPerAxisType


@dataclass(frozen=True)
class OpCapability:
    """One `ref` op as a backend runs it.

    `activations` are the storage types of quantized inputs and results
    (`"u8"`, `"i8"`); `weights` and `weight_schemes` (`"per_tensor"`,
    `"per_channel"`) constrain conv/linear weights; `posts` the fused
    activations (None = none); `spatial` the spatial ranks of convs and pools;
    `transposed` whether transposed convs run; `grouped` whether grouped convs
    (`groups > 1`, depthwise included) run; `float_output` whether a
    conv/linear/matmul may leave the integer domain directly; `functions` the
    ATen targets a `ref.lookup` may compute (empty = any); `check` a last
    predicate for what the fields cannot say; `patterns` the quantizer patterns
    that produce this op: names of built-in ones and the backend's own
    `AnnotationPattern`s (None: the built-in ones for its kind)."""

    op: str
    activations: tuple[str, ...] = ("u8",)
    weights: tuple[str, ...] = ("i8",)
    weight_schemes: tuple[str, ...] = ("per_tensor", "per_channel")
    posts: tuple[str | None, ...] = (None,)
    spatial: tuple[int, ...] = (1, 2)
    transposed: bool = False
    grouped: bool = True
    float_output: bool = False
    functions: tuple[str, ...] = ()
    check: Callable[[Operation], bool] | None = None
    patterns: tuple[Any, ...] | None = None

    def accepts(self, op: Operation) -> bool:
        weight = getattr(op, "weight", None)
        for value in op.operands:
            qtype = ref.quantized(value)
            if qtype is None:
                continue
            if value is weight:
                scheme = "per_channel" if isinstance(qtype, UniformQuantizedPerAxisType) else "per_tensor"
                if _storage(qtype) not in self.weights or scheme not in self.weight_schemes:
                    return False
            elif _storage(qtype) not in self.activations:
                return False
        for value in op.results:
            qtype = ref.quantized(value)
            if qtype is None:
                if ref.element(value) is not None and not self.float_output:
                    return False
            elif _storage(qtype) not in self.activations:
                return False
        post = getattr(op, "post", None)
        if (post.data if post is not None else None) not in self.posts:
            return False
        if isinstance(op, ref.ConvOp | ref.ConvAddOp) and op.spatial_rank not in self.spatial:
            return False
        if isinstance(op, ref.ConvOp) and op.is_transposed and not self.transposed:
            return False
        if isinstance(op, ref.ConvOp | ref.ConvAddOp) and not self.grouped and op.groups.value.data > 1:
            return False
        if isinstance(op, ref.AvgPoolOp | ref.AdaptiveAvgPoolOp):
            if len(op.input.type.get_shape()) - 2 not in self.spatial:
                return False
        if isinstance(op, ref.LookupOp) and self.functions and op.fn.data not in self.functions:
            return False
        return self.check is None or bool(self.check(op))


def _reduces(op: Operation) -> bool:
    return isinstance(op, ref.ConvOp | ref.ConvAddOp | ref.LinearOp | ref.DynamicLinearOp)


def _storage(qtype) -> str:
    return f"{'i' if qtype.is_signed else 'u'}{qtype.storage_width}"


# Quantizer patterns (qir.quantizer.patterns.PatternQuantizer.PATTERNS) that produce each ref op.
_PATTERNS_OF = {
    "ref.conv": ("conv",), "ref.conv_add": ("conv_add",), "ref.linear": ("linear",),
    "ref.matmul": ("matmul",), "ref.add": ("add",), "ref.mul": ("mul",), "ref.cat": ("cat",),
    "ref.avg_pool": ("pooling",), "ref.adaptive_avg_pool": ("pooling",),
}
_FIXED_QPARAMS_FUNCTIONS = {"sigmoid.default", "tanh.default", "softmax.int", "_softmax.default"}


@dataclass(frozen=True)
class Capabilities:
    """A backend's table: the ops it runs, and what its quantizer should be."""

    ops: tuple[OpCapability, ...]
    weight_range: tuple[int, int] = (-128, 127)
    """The weight storage range its kernels want ([-127, 127] for XNNPACK-style symmetric)."""
    patterns: tuple[Any, ...] = ()
    """Quantizer patterns to enable though no `ref` op stands for them: Q/DQ forms the backend's
    own rules fuse (`fixed_qparams` for a matmul+softmax kernel whose softmax has no ref op);
    names of built-in patterns or the backend's own `AnnotationPattern`s."""
    int16_pairs: bool = False
    """Whether its uint8 x int8 conv and linear kernels add pairs of products in int16 with
    saturation on targets without AVX-512 VNNI (fbgemm's and oneDNN's do). On such a target the
    table accepts only those whose constant weights have no pair that can overflow
    (`qir.accumulation.may_saturate`), so what the backend runs equals the reference; and its
    quantizer fits weights so that none has."""
    config: Any = None
    """The `QuantizationConfig` its quantizer applies (None: x86's uint8 recipe when the table
    takes uint8 activations, else XNNPACK's int8 one, with `weight_range`)."""
    _by_op: dict[str, list[OpCapability]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for capability in self.ops:
            self._by_op.setdefault(capability.op, []).append(capability)

    def op_names(self) -> set[str]:
        return set(self._by_op)

    def accepts(self, op: Operation, target=None, params=None) -> bool:
        """Whether some entry for `op`'s kind runs it as built, on `target` (a `qir.target.Target`;
        None: any target computing int8 exactly), with constants from the store `params`."""
        if not any(c.accepts(op) for c in self._by_op.get(op.name, ())):
            return False
        if self.int16_pairs and target is not None and target.pairs_saturate and _reduces(op):
            from qir.accumulation import may_saturate

            return not may_saturate(op, params)  # without a store, a named weight is unknown: refused
        return True

    def activation_storages(self) -> set[str]:
        return {s for c in self.ops for s in c.activations}

    def quantizer_patterns(self) -> tuple:
        """The PatternQuantizer patterns whose ref ops this table runs (plus shape ops, which
        need no kernel: they move quantized values as they are): names of built-in ones, and
        the backend's own `AnnotationPattern`s."""
        patterns: list = []
        for capability in self.ops:
            if capability.patterns is not None:
                patterns.extend(capability.patterns)
                continue
            for pattern in _PATTERNS_OF.get(capability.op, ()):
                patterns.append(pattern)
                if "relu" in capability.posts and pattern in ("conv", "conv_add", "linear", "add", "mul"):
                    patterns.append(f"{pattern}_relu")
                if pattern == "conv" and capability.transposed:
                    patterns.append("conv_transpose")
                    if "relu" in capability.posts:
                        patterns.append("conv_transpose_relu")
            if capability.op == "ref.lookup":
                functions = set(capability.functions)
                if not functions or functions & {"hardswish.default", "hardswish_.default"}:
                    patterns.append("hardswish")
                if not functions or functions & _FIXED_QPARAMS_FUNCTIONS:
                    patterns.append("fixed_qparams")
                if not functions or functions & {"relu.default", "hardtanh.default"}:
                    patterns.append("relu")
        patterns.extend(self.patterns)
        patterns.append("shape")
        from qir.quantizer.patterns import PatternQuantizer

        return tuple(p for p in dict.fromkeys(patterns) if not isinstance(p, str) or p in PatternQuantizer.PATTERNS)

    def quantizer(self, target=None):
        """The quantizer this table implies: its patterns, uint8 or int8 activations as the table
        says (uint8 when both), int8 symmetric per-channel weights (per tensor if the kernels
        only take that). Transposed convs get per-channel weights only where a table entry runs
        them per channel for every group count (QNNPACK's take them ungrouped only). On a
        `target` (the host by default) whose int16 pairs saturate, weights are fitted to them."""
        from dataclasses import replace

        import torch

        from qir.quantizer.patterns import PatternQuantizer
        from qir.quantizer.x86 import x86_config, xnnpack_config
        from qir.target import parse_target

        if self.config is not None:
            config = self.config
        else:
            config = x86_config() if "u8" in self.activation_storages() else xnnpack_config()
            config = replace(config, weight=replace(config.weight, quant_min=self.weight_range[0],
                                                    quant_max=self.weight_range[1]))
        convs = [c for c in self.ops if c.op in ("ref.conv", "ref.linear")]
        schemes = {s for c in convs for s in c.weight_schemes}
        weight = config.weight
        if weight is not None and schemes and "per_channel" not in schemes:
            weight = replace(weight, qscheme=torch.per_tensor_symmetric, ch_axis=None, observer="minmax")
        per_channel_transposed = any(c.transposed and c.grouped and "per_channel" in c.weight_schemes for c in convs)
        target = parse_target(target)
        return PatternQuantizer(replace(config, weight=weight), self.quantizer_patterns(),
                                per_tensor_transposed_weights=not per_channel_transposed,
                                int16_pairs=self.int16_pairs and target.pairs_saturate, target=target)


def table(*entries: OpCapability | Iterable[OpCapability], weight_range: tuple[int, int] = (-128, 127),
          patterns: Iterable = (), int16_pairs: bool = False, config=None) -> Capabilities:
    """A capability table from entries (or lists of entries), extra quantizer patterns (names of
    built-in ones or `AnnotationPattern`s) and the quantization config of its quantizer."""
    from qir.quantizer.annotation_pattern import AnnotationPattern
    from qir.quantizer.patterns import PatternQuantizer
    from qir.quantizer.spec import QuantizationConfig

    flat: list[OpCapability] = []
    for entry in entries:
        flat.extend([entry] if isinstance(entry, OpCapability) else entry)
    patterns = tuple(patterns)
    named = [p for e in flat for p in (e.patterns or ())] + list(patterns)
    unknown = {p for p in named if not isinstance(p, AnnotationPattern) and p not in PatternQuantizer.PATTERNS}
    if unknown:
        raise ValueError(f"unknown quantizer patterns {sorted(map(str, unknown))} (known: "
                         f"{', '.join(PatternQuantizer.PATTERNS)}, or a qir.quantizer.AnnotationPattern)")
    if config is not None and not isinstance(config, QuantizationConfig):
        raise TypeError(f"config must be a qir.quantizer.QuantizationConfig, not {config!r}")
    return Capabilities(tuple(flat), weight_range, patterns, int16_pairs, config)
