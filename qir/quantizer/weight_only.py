"""Weight-only quantization: weights stored narrow, activations left in float.

`WeightOnlyQuantizer` is the IR form of torchao's `Int8WeightOnlyConfig` /
`Int4WeightOnlyConfig` (and of a float16 weight cast): every linear layer (in whatever form
`torch.export` gives it: `normalize-linear` makes `addmm`, `mm` and `matmul` with a constant
weight a `linear`) keeps its input, bias and result in float and reads its weight dequantized
from int8 per output channel, int4 per group of inputs (a sub-channel type, `group_size` 32, 64
or 128), or float16; embedding tables (`nn.Embedding` and the bags of `nn.EmbeddingBag`) are stored per row
(int8 or int4, one scale and zero point per row). Nothing is observed at run time, so nothing needs calibrating: the weights'
observers run when the program is prepared.

    quantized = qir.quantize(model, example_inputs, quantizer=WeightOnlyQuantizer(bits=4, group_size=32),
                             backend="x86")

Why weights only: decoding a language model multiplies one token's activations by every weight
once per step, so the step takes the time to read the weights; a weight 4x (int8) or ~7x (int4
with its scales) smaller is read that much faster, and activations in float lose nothing.

The schemes (all integer weights have the `(q - zp) * s` of MLIR's quant types):

* `bits=8`: int8 per output channel, symmetric [-128, 127] (zero point 0) by default, or
  affine uint8 [0, 255] with `symmetric=False`;
* `bits=4`: int4 per group of `group_size` inputs of each output channel (default 32), affine
  uint4 [0, 15] with a zero point per group by default (torchao's int4 default is affine too),
  or symmetric int4 [-8, 7] with `symmetric=True`; `group_size=None` gives one group per row;
* `dtype=torch.float16` (or `torch.bfloat16`): the weight rounded to it, no scale.

Embedding tables (`embeddings=True`) get a scale and zero point per row, affine (the rows of
a table are not centred on 0): 8 bits, also when the linears get 4 (a row of a thousand values
shares one scale, and 4 bits per row cost a Llama's logits three times the error 4-bit linears
do: `bench/llm_decode.py`); `embedding_bits=4` asks for 4, and a float16 scheme keeps float16
tables.

Composable: `ComposableQuantizer([X86Quantizer().set_module_name("lm_head", None),
WeightOnlyQuantizer(bits=8)])` quantizes statically what the first annotates and the rest
weight-only; `set_module_name(name, None)` / `set_object_type(torch.nn.Linear, None)` leave
layers float, and `weight_only_config(...)` configures one differently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import torch
from xdsl.dialects.builtin import ModuleOp, TensorType

from qir.dialects.aten import AtenOp, ParamOp
from qir.quantizer.base import (
    ConfigurableQuantizer,
    OperatorPattern,
    annotation,
    is_annotated,
    set_annotation,
    warn_if_nothing,
)
from qir.quantizer.spec import QuantizationConfig, QuantizationSpec

EMBEDDINGS = {"embedding", "embedding_bag", "_embedding_bag"}
"""The ATen ops reading a table by row: a lookup, and the sums, means or maxima of bags of rows."""


def weight_only_config(bits: int = 8, group_size: int | None = None, symmetric: bool | None = None,
                       dtype: torch.dtype | None = None) -> QuantizationConfig:
    """The config of a weight-only layer (see the module docstring): only `weight` is set."""
    return QuantizationConfig(None, None, weight_spec(bits, group_size, symmetric, dtype), None)


def weight_spec(bits: int = 8, group_size: int | None = None, symmetric: bool | None = None,
                dtype: torch.dtype | None = None) -> QuantizationSpec:
    """The weight spec of a scheme: int8 per channel, int4 per group, or a float dtype."""
    if dtype is not None:
        if dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"weight-only float weights are float16 or bfloat16, not {dtype}")
        return QuantizationSpec(dtype)
    if bits not in (8, 4):
        raise ValueError(f"weight-only quantization stores 8 or 4 bits, not {bits}")
    if bits == 8:
        symmetric = True if symmetric is None else symmetric
        storage, lo, hi = (torch.int8, -128, 127) if symmetric else (torch.uint8, 0, 255)
    else:
        symmetric = False if symmetric is None else symmetric
        storage, lo, hi = (torch.int4, -8, 7) if symmetric else (torch.uint4, 0, 15)
    if group_size is not None and group_size < 2:
        raise ValueError(f"a group holds at least 2 weights, not {group_size}")
    scheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
    return QuantizationSpec(storage, lo, hi, scheme, ch_axis=0,
                            observer="per_group_minmax" if group_size else "per_channel_minmax",
                            group_size=group_size)


def _row_spec(spec: QuantizationSpec, bits: int | None) -> QuantizationSpec | None:
    """An embedding table's spec: per row, affine, `bits` wide (8 by default)."""
    if spec.dtype in (torch.float16, torch.bfloat16):
        return spec if bits is None else _row_spec(weight_spec(bits), bits)
    width = 8 if bits is None else bits
    if width not in (8, 4):
        raise ValueError(f"embedding tables are stored in 8 or 4 bits, not {width}")
    storage, lo, hi = (torch.uint8, 0, 255) if width == 8 else (torch.uint4, 0, 15)
    return replace(spec, dtype=storage, quant_min=lo, quant_max=hi, qscheme=torch.per_channel_affine,
                   observer="per_channel_minmax", group_size=None)


class WeightOnlyQuantizer(ConfigurableQuantizer):
    """Weight-only int8 / int4 / float16 linears and per-row embedding tables (see the module
    docstring)."""

    def __init__(self, bits: int = 8, group_size: int | None | str = "default", symmetric: bool | None = None, *,
                 dtype: torch.dtype | None = None, embeddings: bool = True, embedding_bits: int | None = None):
        if group_size == "default":  # groups of 32 for 4 bits, one scale per output channel for 8
            group_size = 32 if bits == 4 and dtype is None else None
        super().__init__(weight_only_config(bits, group_size, symmetric, dtype))
        self.embeddings = embeddings
        self.embedding_bits = embedding_bits
        self.description = ("float16" if dtype == torch.float16 else "bfloat16" if dtype == torch.bfloat16
                            else f"int{bits}" + (f", groups of {group_size}" if group_size else " per channel"))

    @classmethod
    def float16(cls, **kwargs) -> WeightOnlyQuantizer:
        """Weights rounded to float16 (fbgemm's `linear_dynamic_fp16` runs them on x86)."""
        return cls(dtype=torch.float16, **kwargs)

    def get_supported_operators(self) -> list[OperatorPattern]:
        patterns = [OperatorPattern("linear", ("linear",))]
        if self.embeddings:
            patterns += [OperatorPattern("embedding", ("embedding",)),
                         OperatorPattern("embedding_bag", ("embedding_bag", "_embedding_bag"))]
        return patterns

    def annotate_module(self, module: ModuleOp) -> Counter:
        counts: Counter = Counter()
        for op in [o for o in module.walk() if isinstance(o, AtenOp)]:
            if is_annotated(op):
                continue
            config = self.config_for(op)
            if config is None or config.weight is None:
                continue
            if op.op_name == "linear" and _constant_float(op, 1):
                spec = config.weight
                if spec.group_size and op.operands[1].type.get_shape()[1] % spec.group_size:
                    counts["left float: groups do not divide the row"] += 1
                    continue
                index, pattern = 1, "linear"
            elif op.op_name in EMBEDDINGS and self.embeddings and _constant_float(op, 0):
                spec = _row_spec(config.weight, self.embedding_bits)
                index, pattern = 0, op.op_name.lstrip("_")
            else:
                continue
            qin = annotation(op, "qin")
            qin[index] = spec.to_attr()
            set_annotation(op, "qin", qin)
            counts[pattern] += 1
        warn_if_nothing(Counter({k: v for k, v in counts.items() if not k.startswith("left")}), self)
        self.warn_unmatched(module)
        return counts

    def validate(self, program) -> None:
        """Annotated ops are linears and embeddings whose only spec is their weight's."""
        from qir.errors import QirError, describe_op

        for op in program.module.walk():
            if not isinstance(op, AtenOp) or not is_annotated(op):
                continue
            weight = 1 if op.op_name == "linear" else 0 if op.op_name in EMBEDDINGS else None
            specs = [(i, s) for i, s in enumerate(annotation(op, "qin")) if s is not None]
            if weight is None or any(s is not None for s in annotation(op, "qout")) \
                    or [i for i, _ in specs] != [weight]:
                raise QirError(f"{describe_op(op)}: {type(self).__name__} quantizes the weights of linears and "
                               "embeddings only")


def _constant_float(op: AtenOp, index: int) -> bool:
    """Whether operand `index` of `op` is a floating-point parameter (a weight or a table)."""
    if len(op.operands) <= index or not op.results:
        return False
    value = op.operands[index]
    if not isinstance(value.owner, ParamOp) or not isinstance(value.type, TensorType):
        return False
    from xdsl.dialects.builtin import f32

    return value.type.element_type == f32 and len(value.type.get_shape()) == 2


WEIGHT_ONLY_SCHEMES: dict[str, dict] = {
    "weight-int8": dict(bits=8),
    "weight-int4": dict(bits=4, group_size=32),
    "weight-int4-g64": dict(bits=4, group_size=64),
    "weight-int4-g128": dict(bits=4, group_size=128),
    "weight-int4-sym": dict(bits=4, group_size=32, symmetric=True),
    "weight-fp16": dict(dtype=torch.float16),
}
"""The weight-only quantizers by name (`annotate{quantizer=weight-int4}`, `qir-quantize --scheme`)."""


def weight_only_by_name(name: str) -> WeightOnlyQuantizer:
    if name not in WEIGHT_ONLY_SCHEMES:
        raise ValueError(f"unknown weight-only scheme {name!r} (known: {', '.join(WEIGHT_ONLY_SCHEMES)})")
    return WeightOnlyQuantizer(**WEIGHT_ONLY_SCHEMES[name])
