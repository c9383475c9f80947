"""emulate-target: make the reference compute what a target's int8 kernels would.

By default the reference representation is exact integer arithmetic, the
meaning of the quantized program that every backend must match. A program
quantized for one CPU may still be run elsewhere by kernels that compute
something else: on an x86 CPU without AVX-512 VNNI, fbgemm and oneDNN add
pairs of uint8 x int8 products in int16 with saturation. This pass marks each
`ref.conv`, `ref.conv_add` and `ref.linear` whose constant weights have a pair
that could overflow on the target with the kernel family that would run it, so
that the reference backend computes the saturated result, on any host:

    %y = ref.linear(%x, %w, %b) : (...) -> ...
  becomes, for `emulate-target{target=x86-avx2}`,
    %y = ref.linear(%x, %w, %b) {saturate = "onednn"} : (...) -> ...

`kernels` names the backend whose kernels are emulated: `x86` (convolutions on
fbgemm, as torch's x86 engine packs them on such CPUs, linears on oneDNN, as
the x86 backend packs them) or `onednn` (oneDNN for both). Grouped and
depthwise convolutions run on oneDNN in both, and do not saturate; transposed
convolutions are not emulated (the capability checks refuse those that could
saturate). The accuracy a program would have there is then measurable here
(`qir.lower(quantized, "reference", target="x86-avx2")`), and `qir.debug`
shows which layer loses it. On a target whose kernels are exact, nothing
changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr

from qir.accumulation import Reduction, risky_pairs, saturating_operands
from qir.context import params_of
from qir.dialects import ref
from qir.params import constant_tensor
from qir.pass_manager import QirPass, count
from qir.target import parse_target, pass_target, record_target

KERNELS = ("x86", "onednn")


@dataclass(frozen=True)
class EmulateTarget(QirPass):
    """Mark the convs and linears a target's kernels would saturate (see the module docstring)."""

    name = "emulate-target"
    requires = ("reference",)

    target: str = ""
    """The CPU to emulate (`qir.target`); the module's recorded target, else the host."""

    kernels: str = "x86"
    """Whose kernels: `x86` or `onednn`."""

    def __post_init__(self) -> None:
        if self.target:
            parse_target(self.target)
        if self.kernels not in KERNELS:
            raise ValueError(f"unknown kernels {self.kernels!r} (expected {' or '.join(KERNELS)})")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        target = pass_target(self.target, op)
        record_target(op, target)
        if not target.pairs_saturate:
            return
        store = params_of(ctx)
        for candidate in op.walk():
            if not isinstance(candidate, ref.ConvOp | ref.ConvAddOp | ref.LinearOp):
                continue
            kind = self._kind(candidate, target)
            qin = ref.per_tensor(candidate.input)
            weight = constant_tensor(candidate.weight, store)
            if kind is None or weight is None or not saturating_operands(qin, ref.quantized(candidate.weight)):
                continue
            groups = candidate.groups.value.data if not isinstance(candidate, ref.LinearOp) else 1
            table = risky_pairs(weight, Reduction(tuple(weight.shape), groups), kind, qin.storage_min,
                                qin.storage_max)
            if table.shape[0]:
                candidate.properties["saturate"] = StringAttr(kind)
                count(ctx, f"saturating {candidate.name}")

    def _kind(self, op, target) -> str | None:
        if isinstance(op, ref.LinearOp):  # oneDNN's AVX-512 gemm pairs consecutive features, its AVX2 one per K block
            return "fbgemm" if target.has("avx512") else "onednn"
        if (isinstance(op, ref.ConvOp) and op.is_transposed) or op.groups.value.data > 1:
            return None  # grouped and depthwise convs run on oneDNN, exactly
        return "onednn" if self.kernels == "onednn" else "fbgemm"
