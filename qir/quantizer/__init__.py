"""Quantizers: which ops to quantize, and how (the PT2E concepts, as IR attributes)."""

from qir.quantizer.annotation_pattern import AnnotationPattern
from qir.quantizer.base import ComposableQuantizer, ConfigurableQuantizer, OperatorPattern, Quantizer
from qir.quantizer.dynamic import DynamicQuantizer, dynamic_config
from qir.quantizer.spec import (
    DerivedQuantizationSpec,
    FixedQParamsQuantizationSpec,
    QuantizationConfig,
    QuantizationSpec,
    SharedQuantizationSpec,
)
from qir.quantizer.patterns import PatternQuantizer, fixed_qparams
from qir.quantizer.weight_only import WEIGHT_ONLY_SCHEMES, WeightOnlyQuantizer, weight_only_by_name, weight_only_config
from qir.quantizer.x86 import X86Quantizer, XNNPACKQuantizer, x86_config, xnnpack_config

QUANTIZERS = {"x86": X86Quantizer, "xnnpack": XNNPACKQuantizer, "x86-qat": X86Quantizer, "xnnpack-qat": XNNPACKQuantizer,
              "dynamic": DynamicQuantizer, "dynamic-per-tensor": DynamicQuantizer}
"""qir's own quantizers by the name `annotate{quantizer=NAME}` and `qir-quantize --quantizer` take
(`-qat`: the QAT config, whose activation ranges learn as moving averages). Backends name theirs
(`qir.lowering.Backend.quantizers`); `qir.registry.available_quantizers()` lists them all."""

QUANTIZERS.update({name: WeightOnlyQuantizer for name in WEIGHT_ONLY_SCHEMES})  # weight-int8, weight-int4, ...


def quantizer_by_name(name: str, target=None) -> Quantizer:
    """The quantizer `name`, for `target` (a `qir.target` name; the host by default) where it
    depends on the CPU: one of qir's own (`QUANTIZERS`) or one a backend names."""
    if name not in QUANTIZERS:
        from qir.registry import get_quantizer

        return get_quantizer(name, target)  # a ValueError listing every name if no backend has it
    if name in ("x86", "x86-qat"):
        return X86Quantizer(x86_config(is_qat=name.endswith("-qat")), target=target)
    if name.startswith("dynamic"):
        return DynamicQuantizer(per_token=False if name == "dynamic-per-tensor" else None, target=target)
    if name in WEIGHT_ONLY_SCHEMES:
        return weight_only_by_name(name)
    return XNNPACKQuantizer(xnnpack_config(is_qat=name.endswith("-qat")))


__all__ = [
    "QUANTIZERS",
    "AnnotationPattern",
    "ComposableQuantizer",
    "ConfigurableQuantizer",
    "DerivedQuantizationSpec",
    "DynamicQuantizer",
    "FixedQParamsQuantizationSpec",
    "OperatorPattern",
    "PatternQuantizer",
    "QuantizationConfig",
    "QuantizationSpec",
    "Quantizer",
    "SharedQuantizationSpec",
    "WeightOnlyQuantizer",
    "X86Quantizer",
    "XNNPACKQuantizer",
    "quantizer_by_name",
    "weight_only_config",
    "dynamic_config",
    "fixed_qparams",
    "x86_config",
    "xnnpack_config",
]
