"""`bmm-int8`: a qir backend in a package of its own, built on qir's public API only.

It runs torch.ao's custom-backend RFC example (RFC-0019, "Quantized Fused BMM and Softmax"):
an int8 `bmm`, and `bmm + softmax` fused into one kernel, with a quantizer of its own that
annotates exactly those units. Everything qir needs is in `BACKEND`, which the package's
`pyproject.toml` names in the `qir.backends` entry point group:

    [project.entry-points."qir.backends"]
    bmm-int8 = "qir_bmm_backend:BACKEND"

so that, once installed (`pip install examples/qir_bmm_backend`), every qir process finds it:

    qir.quantize(model, example_inputs, calibration=batches, backend="bmm-int8")
    qir-opt m.mlir -p 'annotate{quantizer=bmm-int8},propagate-annotations,insert-observers'
    qir-opt calibrated.mlir -p 'convert,reference-rewrite{backend=bmm-int8},lower-bmm-int8'

The parts: the capability table and quantizer (`quantizer.py`), the `qbmm` dialect
(`dialect.py`), the rules (`bmm.rules`), the kernels (`kernels.py`) and their emission
(`emission.py`). qir's `docs/backends.md` walks through them.
"""

from __future__ import annotations

from pathlib import Path

from qir.lowering import Backend, OpCapability, table
from qir_bmm_backend.dialect import QBMM
from qir_bmm_backend.emission import EMISSION
from qir_bmm_backend.quantizer import BMM, BMM_SOFTMAX, CONFIG


def _batched(op) -> bool:
    """The kernels multiply batches of matrices: both operands of rank 3 (torch.bmm's)."""
    return all(len(v.type.get_shape()) == 3 for v in (op.lhs, op.rhs))


CAPABILITIES = table(
    # What the kernels run: `ref.matmul` of two int8 batches, to int8 or float; produced by the
    # two patterns below (and by nothing else: qir's own `matmul` pattern is not enabled).
    OpCapability("ref.matmul", activations=("i8",), float_output=True, check=_batched,
                 patterns=(BMM_SOFTMAX, BMM)),
    config=CONFIG,
)

BACKEND = Backend(
    name="bmm-int8",
    description="int8 bmm and bmm + softmax kernels (qbmm::*, torch._int_mm)",
    capabilities=CAPABILITIES,
    dialects=(QBMM,),
    rules=(Path(__file__).with_name("bmm.rules"),),
    emission=EMISSION,
)
