"""How `x86` ops become torch calls: the quantized kernels' emission, for this dialect."""

from qir.lowering.quantized_kernels.emit import register_emission
from qir.lowering.x86 import dynamic_emit  # noqa: F401  (the emission of its dynamic-quantization ops)
from qir.lowering.x86.dialect import X86

register_emission(X86)
