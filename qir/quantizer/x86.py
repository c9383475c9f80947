"""The built-in quantizers: x86 (fbgemm/oneDNN) and XNNPACK-style symmetric int8.

`X86Quantizer` follows torchao's X86InductorQuantizer defaults: uint8 affine
activations observed with a histogram, int8 symmetric per-channel weights,
float bias (the x86 kernels take it in float). `XNNPACKQuantizer` follows
torchao's XNNPACKQuantizer: int8 affine activations, int8 symmetric
per-channel weights in [-127, 127].
"""

from __future__ import annotations

import torch

from qir.quantizer.patterns import PatternQuantizer
from qir.quantizer.spec import QuantizationConfig, QuantizationSpec

X86_PATTERNS = (
    "conv", "conv_relu", "conv_add", "conv_add_relu", "conv_transpose", "conv_transpose_relu",
    "linear", "linear_relu", "matmul", "add", "add_relu", "mul", "cat", "pooling", "relu",
    "hardswish", "fixed_qparams", "shape",
)


def x86_config(is_qat: bool = False, smoothing: float | None = None) -> QuantizationConfig:
    """X86's config; `smoothing` (SmoothQuant's alpha) smooths the inputs of its linears."""
    activation = QuantizationSpec(torch.uint8, 0, 255, torch.per_tensor_affine,
                                  observer="moving_minmax" if is_qat else "histogram")
    weight = QuantizationSpec(torch.int8, -128, 127, torch.per_channel_symmetric, ch_axis=0,
                              observer="per_channel_minmax")
    return QuantizationConfig(activation, activation, weight, None, is_qat, smoothing)


def xnnpack_config(is_qat: bool = False, smoothing: float | None = None) -> QuantizationConfig:
    """XNNPACK's config; `smoothing` (SmoothQuant's alpha) smooths the inputs of its linears."""
    activation = QuantizationSpec(torch.int8, -128, 127, torch.per_tensor_affine,
                                  observer="moving_minmax" if is_qat else "histogram")
    weight = QuantizationSpec(torch.int8, -127, 127, torch.per_channel_symmetric, ch_axis=0,
                              observer="per_channel_minmax")
    return QuantizationConfig(activation, activation, weight, None, is_qat, smoothing)


class X86Quantizer(PatternQuantizer):
    """uint8 affine activations, int8 symmetric per-channel weights, x86's fusion units.

    `target` (a `qir.target` name or Target, the host by default) is the CPU the model will
    run on: on one without AVX-512 VNNI, whose kernels add pairs of uint8 x int8 products in
    int16 with saturation, each weight channel gets the smallest scale at which none of its
    pairs can overflow, so the kernels compute exactly what the quantized model says."""

    def __init__(self, config: QuantizationConfig | None = None, *, target=None):
        from qir.target import parse_target

        target = parse_target(target)
        super().__init__(config if config is not None else x86_config(), X86_PATTERNS,
                         per_tensor_transposed_weights=True, int16_pairs=target.pairs_saturate, target=target)


XNNPACK_PATTERNS = (
    "conv", "conv_relu", "conv_add", "conv_add_relu", "linear", "linear_relu", "matmul", "add",
    "add_relu", "mul", "cat", "pooling", "relu", "hardswish", "fixed_qparams", "shape",
)


class XNNPACKQuantizer(PatternQuantizer):
    """Symmetric int8 in the style of XNNPACK: int8 activations, weights in [-127, 127]."""

    def __init__(self, config: QuantizationConfig | None = None):
        super().__init__(config if config is not None else xnnpack_config(), XNNPACK_PATTERNS)
