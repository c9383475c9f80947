"""How `x86` ops become torch calls: the quantized kernels' emission, for this dialect."""

from qir.lowering.dynamic_kernels import emit as dynamic_emit  # noqa: F401  (the emission of its dynamic-quantization ops)
from qir.lowering.quantized_kernels.emit import emission_of
from qir.lowering.x86 import weight_only_emit  # noqa: F401  (the emission of its weight-only ops)
from qir.lowering.x86.dialect import X86

EMISSION = emission_of(X86)
