"""Quantizers: which ops to quantize, and how (the PT2E concepts, as IR attributes)."""

from qir.quantizer.base import ComposableQuantizer, ConfigurableQuantizer, OperatorPattern, Quantizer
from qir.quantizer.spec import (
    DerivedQuantizationSpec,
    FixedQParamsQuantizationSpec,
    QuantizationConfig,
    QuantizationSpec,
    SharedQuantizationSpec,
)
from qir.quantizer.x86 import X86Quantizer, XNNPACKQuantizer, x86_config, xnnpack_config

QUANTIZERS = {"x86": X86Quantizer, "xnnpack": XNNPACKQuantizer}
"""Quantizers by the name `annotate{quantizer=NAME}` and `qir-quantize --quantizer` take."""


def quantizer_by_name(name: str, target=None) -> Quantizer:
    """The quantizer `name`, for `target` (a `qir.target` name; the host by default) where it
    depends on the CPU."""
    if name not in QUANTIZERS:
        raise ValueError(f"unknown quantizer {name!r} (available: {', '.join(QUANTIZERS)})")
    if name == "x86":
        return X86Quantizer(target=target)
    return QUANTIZERS[name]()


__all__ = [
    "QUANTIZERS",
    "ComposableQuantizer",
    "ConfigurableQuantizer",
    "DerivedQuantizationSpec",
    "FixedQParamsQuantizationSpec",
    "OperatorPattern",
    "QuantizationConfig",
    "QuantizationSpec",
    "Quantizer",
    "SharedQuantizationSpec",
    "X86Quantizer",
    "XNNPACKQuantizer",
    "quantizer_by_name",
    "x86_config",
    "xnnpack_config",
]
