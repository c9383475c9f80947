"""Dynamic quantization: activations quantized when the program runs, weights ahead of time.

`DynamicQuantizer` is the IR form of `torch.ao.quantization.quantize_dynamic` and of torchao's
`Int8DynamicActivationInt8WeightConfig`: every linear layer (in whatever form `torch.export`
gives it: `normalize-linear` makes `addmm`, `mm` and `matmul` with a constant weight a `linear`)
reads its input quantized with parameters chosen from that input at run time, and its weight
quantized to int8 per output channel; its bias and its result stay float. No calibration is
needed: the example inputs are enough.

    quantized = qir.quantize(model, example_inputs, quantizer=DynamicQuantizer(), backend="x86")

What it annotates, and why only that. A linear is where the work is (MiniLM: 99% of the
multiply-accumulates) and where a dynamic kernel exists (oneDNN's `qlinear_pointwise` with
run-time activation parameters); `quantize_dynamic` quantizes the same, and RNNs. A product of
two activations (attention's `q @ k^T`) is not: both operands would need run-time parameters,
for a small share of the work. A convolution has no dynamic kernel in torch.

RNNs. `qir.prepare` imports an `nn.LSTM` / `nn.GRU` / `nn.RNN` this quantizer configures as its
cells' linears (torch's decomposition of the RNN ops alone, `qir.recurrent`): every `W_ih` and
`W_hh` int8, the activations at run time, per token here, so closer to float than
`quantize_dynamic`'s per-tensor activations (`tests/test_dynamic.py`). A program given as IR keeps
an RNN as the one op `torch.export` makes of it (`aten.lstm.input`, its weights a list operand):
left float, with a warning naming it.

Granularity: per token (the default): one scale per row of the activation, symmetric int8
[-127, 127], which keeps a transformer within 0.995 of float where one scale per tensor does
not; per tensor (`per_token=False`): uint8 affine, one scale for the whole activation. On x86
CPUs without VNNI, whose kernels add pairs of uint8 x int8 products in int16 (an int8 input runs
on them as `q + 128`), the weights are fitted so that no pair can overflow, as for static
quantization.

Composable with the static quantizers: `ComposableQuantizer([DynamicQuantizer(...),
X86Quantizer()])` quantizes the linears dynamically and the rest statically; `set_module_name`,
`set_module_name_regex` and `set_object_type` of any quantizer take dynamic configs
(`dynamic_config()`) or None (left float). A mixed recipe, static but for one role of linear
read per token (MiniLM's: `X86Quantizer().set_module_name_regex(r".*intermediate\.dense",
dynamic_config(symmetric=False))`), is the same as text (`annotate{quantizer=dynamic
modules=...},annotate{quantizer=x86}`) and from `qir-quantize --dynamic-modules REGEX`.
"""

from __future__ import annotations

import warnings

import torch

from qir.dialects.aten import AtenOp
from qir.errors import describe_op
from qir.quantizer.patterns import PatternQuantizer
from qir.quantizer.spec import QuantizationConfig, QuantizationSpec
from qir.recurrent import RNN_OPS


def dynamic_config(per_token: bool = True, symmetric: bool | None = None) -> QuantizationConfig:
    """The config of a dynamically quantized linear: the input quantized at run time (per token:
    int8, symmetric [-127, 127] by default or affine [-128, 127]; per tensor: uint8, affine by
    default or symmetric with zero point 128), the weight int8 symmetric per output channel,
    bias and result float."""
    if per_token:
        symmetric = True if symmetric is None else symmetric
        activation = QuantizationSpec(torch.int8, -127 if symmetric else -128, 127,
                                      torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine,
                                      is_dynamic=True, per_token=True)
    else:
        activation = QuantizationSpec(torch.uint8, 0, 255,
                                      torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine,
                                      is_dynamic=True)
    weight = QuantizationSpec(torch.int8, -128, 127, torch.per_channel_symmetric, ch_axis=0,
                              observer="per_channel_minmax")
    return QuantizationConfig(activation, None, weight, None)


class DynamicQuantizer(PatternQuantizer):
    """Linear layers with dynamically quantized inputs and int8 per-channel weights (see the module
    docstring): per token by default, per tensor with `per_token=False`; `symmetric` as
    `dynamic_config` takes it. `target` (a `qir.target` name, the host by default) is the CPU the
    program is for: without VNNI the weights are fitted to its kernels' int16 pairs."""

    def __init__(self, config: QuantizationConfig | None = None, *, per_token: bool | None = None,
                 symmetric: bool | None = None, target=None):
        from qir.target import parse_target

        target = parse_target(target)
        if per_token is None:
            per_token = True
        super().__init__(config if config is not None else dynamic_config(per_token, symmetric), ("linear",),
                         int16_pairs=target.pairs_saturate, target=target, full_range_share=0.0)

    def annotate_module(self, module):
        counts = super().annotate_module(module)
        for op in module.walk():
            if isinstance(op, AtenOp) and op.op_name in RNN_OPS and self.config_for(op) is not None:
                counts[f"left float: {op.op_name}"] += 1
                warnings.warn(f"{type(self).__name__}: {describe_op(op)} left float: an RNN in IR is one op; "
                              "qir.prepare of the nn.Module or ExportedProgram imports it as linears to "
                              "quantize", stacklevel=2)
        return counts
