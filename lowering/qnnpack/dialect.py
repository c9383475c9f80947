"""The `qnnpack` dialect: torch's quantized CPU kernels as QNNPACK runs them, one op per kernel
(`qnnpack.conv2d_relu`, `qnnpack.linear`, ...); see `qir.lowering.quantized_kernels.ops`.
The kernels QNNPACK lacks or gets wrong (`qir.lowering.qnnpack.EXCLUDED_KERNELS`) are not ops
of it, so no rule can produce them and no hand-written IR can name them."""

from qir.lowering.qnnpack import EXCLUDED_KERNELS
from qir.lowering.quantized_kernels.ops import declare_dialect

QNNPACK = declare_dialect("qnnpack", exclude=EXCLUDED_KERNELS)
