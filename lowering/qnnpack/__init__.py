"""The `qnnpack` backend: torch's quantized CPU kernels under the QNNPACK engine.

The kernels are the x86 backend's (`torch.ops.quantized.*`, described once in
`qir.lowering.quantized_kernels`), with weights prepacked by QNNPACK and every kernel
run while `torch.backends.quantized.engine` is `"qnnpack"`: `quantized::add`, the pools,
`hardswish`, `sigmoid`, and `relu` / `clamp` of a quantized tensor pick their QNNPACK
code by the engine active at call time, not by how anything was packed. Each call
switches the engine and restores the caller's (`quantized_kernels.emit.on_engine`).

What QNNPACK runs, found on torch 2.13 against the `reference` backend (see the table
and `tests/test_qnnpack.py`):

* activations are `quint8` only (a `qint8` activation is an error in every QNNPACK
  conv and linear);
* convs 1-3d and linears take per-tensor or per-channel int8 weights, with any weight
  zero point (QNNPACK shifts weights to uint8 itself), fused relu;
* transposed convs run 1-2d only: `conv_transpose3d` returns garbage (up to 255 steps
  off the reference on every shape tried); per-channel transposed weights only without
  groups (the packing reads `out_channels` scales where a per-channel `[in, out/groups, ...]`
  weight has `out/groups`: an error or a zero requantization scale);
* there is no conv + add kernel (`quantized::conv2d_add` has no QNNPACK implementation)
  and no int8 linear with float output (`linear_with_input_q_dq_qweight_dq_output_fp32`
  is not implemented for QNNPACK's packed weights): `ref.conv_add` and float-output
  linears are refused and stay in the Q/DQ form; the derived quantizer has no `conv_add`
  pattern, so it never asks for the fusion (conv and add are annotated as units of their own);
* QNNPACK's add takes input-to-output scale ratios in [2**-14, 2**8) only (outside it,
  an internal assert);
* QNNPACK's sigmoid takes the output parameters 1/256:0 only (others: the exact table);
* QNNPACK's average pool ignores `divisor_override` and `count_include_pad=False` (those
  pools are refused), and its clamp scrambles channels-last tensors (`emit.py` hands it a
  contiguous view);
* dynamic and weight-only programs stay in the Q/DQ form (activations quantized at run time and
  weights dequantized, float linears: the reference's numbers up to float32 rounding): QNNPACK's
  `quantized.linear_dynamic` chooses its own per-tensor uint8 parameters, so the per-token default
  cannot run on it, and no QNNPACK kernel takes float16 or group-wise int4 weights (torch has no
  quantized tensor with a table per group: such a weight stays a `quant.dcast` of its storage).
"""

from __future__ import annotations

from pathlib import Path

from qir.lowering.backend import Backend
from qir.lowering.capabilities import OpCapability, table
from qir.lowering.quantized_kernels.functions import FUNCTIONS
from qir.lowering.quantized_kernels.patterns import lowering_patterns

EXCLUDED_KERNELS = frozenset({
    "conv2d_add", "conv2d_add_relu",        # no QNNPACK implementation
    "linear_fp32", "linear_relu_fp32",      # not implemented for QNNPACK-packed weights
    "linear_gelu_fp32", "linear_add_fp32", "conv1d_fp32", "conv2d_fp32", "conv3d_fp32",  # oneDNN kernels
    "conv_transpose3d",                     # runs, but wrong
})
"""The kernels of `quantized_kernels.ops.KERNELS` the QNNPACK dialect leaves out."""

from qir.lowering.qnnpack.dialect import QNNPACK  # noqa: E402 (it reads EXCLUDED_KERNELS)
from qir.lowering.qnnpack.emit import EMISSION  # noqa: E402


ADD_SCALE_RATIOS = (2.0 ** -14, 2.0 ** 8)
"""The input-to-output scale ratios QNNPACK's add operator is created with, [low, high)."""


def _add_runs(op) -> bool:
    """QNNPACK's add refuses an input whose scale over the output's is outside
    `ADD_SCALE_RATIOS` (torch turns the refusal into an internal assert)."""
    from qir.dialects.ref import per_tensor

    out = per_tensor(op.output).scale
    low, high = ADD_SCALE_RATIOS
    return all(low <= per_tensor(v).scale / out < high for v in (op.lhs, op.rhs))


def _avg_pool_runs(op) -> bool:
    """QNNPACK's average pool (what torch runs for a 1-2d pool without ceil_mode, keeping the
    input's parameters, while the engine is qnnpack) ignores `divisor_override` and
    `count_include_pad=False`: up to 180 steps off the reference. Other pools take torch's
    generic kernel (3d, ceil_mode) or the float mean quantized once (new parameters)."""
    from qir.dialects.ref import per_tensor

    if len(op.input.type.get_shape()) == 5 or (op.ceil_mode is not None and op.ceil_mode.value.data):
        return True
    if per_tensor(op.output) != per_tensor(op.input):
        return True
    excludes_pad = op.count_include_pad is not None and not op.count_include_pad.value.data
    return op.divisor_override is None and not (excludes_pad and any(op.padding.get_values()))


_POSTS = (None, "relu", "hardtanh")

CAPABILITIES = table(
    OpCapability("ref.conv", posts=_POSTS, spatial=(1, 2, 3)),
    OpCapability("ref.conv", posts=_POSTS, spatial=(1, 2), transposed=True, weight_schemes=("per_tensor",)),
    OpCapability("ref.conv", posts=_POSTS, spatial=(1, 2), transposed=True, weight_schemes=("per_channel",),
                 grouped=False),
    OpCapability("ref.linear", posts=_POSTS),
    OpCapability("ref.matmul"),
    OpCapability("ref.add", posts=(None, "relu"), check=_add_runs),
    OpCapability("ref.mul", posts=(None, "relu")),
    OpCapability("ref.cat"),
    OpCapability("ref.requantize"),
    OpCapability("ref.avg_pool", spatial=(1, 2, 3), check=_avg_pool_runs),
    OpCapability("ref.adaptive_avg_pool", spatial=(1, 2)),
    OpCapability("ref.lookup"),
)

BACKEND = Backend(
    name="qnnpack",
    description="torch.ops.quantized kernels on the QNNPACK engine",
    capabilities=CAPABILITIES,
    dialects=(QNNPACK,),
    rules=(Path(__file__).with_name("qnnpack.rules"),),
    functions=FUNCTIONS,
    patterns=lowering_patterns(QNNPACK),
    emission=EMISSION,
)
