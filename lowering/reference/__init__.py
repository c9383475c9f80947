"""The `reference` backend: `ref` ops run as integer ATen arithmetic, anywhere.

Its kernels are the `ref` ops themselves, emitted as the reference quantized
representation (`qir.emit_ref`: int8 storage, exact integer accumulation,
requantization with round half to even), so it needs no rules: lowering only
checks and records the target. It accepts every `ref` op in every storage type
the dialect allows; it is the bit-exact emulation every other backend is
checked against.

One rewrite works around torch: `max_pool2d`/`max_pool3d` of int8/uint8 storage
in a channels-last layout (a conv of a channels-last input gives one) fails in
torch's kernel once the spatial size exceeds the dtype's maximum, so the storage
is made contiguous first (`contiguous` copies only a tensor that is not).
"""

from __future__ import annotations

from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from qir.dialects import ref
from qir.dialects.aten import AtenOp
from qir.lowering.backend import Backend
from qir.lowering.capabilities import OpCapability, table

_STORAGES = ("u8", "i8", "u16", "i16")
_ANY = dict(activations=_STORAGES, weights=("i8", "u8", "i16"), posts=(None, "relu", "hardtanh"),
            spatial=(1, 2, 3), float_output=True)

CAPABILITIES = table(
    OpCapability("ref.conv", transposed=True, **_ANY),
    # weight-only: float activations, any weight with its parameters (sub-channel too) or float16
    *(OpCapability(name, activations=(), weights=("i8", "u8", "i4", "u4"), float_output=True)
      for name in ("ref.weight_only_linear", "ref.weight_only_embedding", "ref.weight_only_embedding_bag")),
    *(OpCapability(name, **_ANY) for name in (
        "ref.conv_add", "ref.linear", "ref.dynamic_linear", "ref.matmul", "ref.add", "ref.mul", "ref.cat", "ref.requantize",
        "ref.avg_pool", "ref.adaptive_avg_pool", "ref.lookup")),
)

_MAX_POOLS = {"max_pool2d.default", "max_pool3d.default", "max_pool2d_with_indices.default",
              "max_pool3d_with_indices.default"}


class ContiguousStorageMaxPool(RewritePattern):
    """`max_pool{2,3}d` of quantized storage reads a contiguous tensor (see the module docstring)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        if op.target.data not in _MAX_POOLS or not op.operands or op.arg(0) is not op.operands[0]:
            return
        source = op.operands[0]
        if ref.quantized(source) is None:
            return
        owner = source.owner
        if isinstance(owner, AtenOp) and owner.target.data == "contiguous.default":
            return
        contiguous = AtenOp("contiguous.default", [source], None, [source.type])
        contiguous.location = op.location
        contiguous.results[0].name_hint = f"{source.name_hint or 'v'}_contiguous"
        rewriter.insert(contiguous)
        op.operands[0] = contiguous.results[0]
        rewriter.handle_operation_modification(op)


BACKEND = Backend(
    name="reference",
    description="the reference quantized representation (integer ATen arithmetic)",
    capabilities=CAPABILITIES,
    leftovers=lambda op: True,
    patterns=(ContiguousStorageMaxPool(),),
)
