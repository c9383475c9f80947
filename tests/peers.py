"""The torch peers qir is measured against, run the way their documentation says.

torchao (PT2E) is an optional test dependency: `torchao_x86` returns None
when it is not installed, and tests skip. Its documented flow raises on some
graphs (a module reused twice, pytorch/ao); that is reported as an exception
for the caller to handle.
"""

from __future__ import annotations

import copy
import warnings

import torch


def sqnr(reference: torch.Tensor, approximation: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when equal)."""
    reference, approximation = reference.detach().double(), approximation.detach().double()
    noise = (reference - approximation).norm()
    if noise == 0:
        return float("inf")
    return float(20 * torch.log10(reference.norm() / noise))


def calibration_batches(entry, n: int = 4) -> list[tuple[tuple, dict]]:
    """`n` batches shaped like the entry's example inputs (export pins the batch size of
    both flows' graphs), with the float inputs perturbed so that batches differ."""
    from torch.utils._pytree import tree_map

    batches = []
    for i in range(n):
        generator = torch.Generator().manual_seed(100 + i)

        def perturb(t):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                return t + 0.25 * torch.randn(t.shape, generator=generator, dtype=t.dtype)
            return t

        args, kwargs = entry.make_inputs()
        batches.append((tree_map(perturb, args), tree_map(perturb, kwargs)))
    return batches


def torchao_available() -> bool:
    try:
        import torchao  # noqa: F401
    except Exception:
        return False
    return True


def torchao_x86(model: torch.nn.Module, args: tuple, kwargs: dict, calibration: list[tuple]):
    """torchao's X86InductorQuantizer PT2E flow: export → prepare_pt2e → calibrate → convert_pt2e."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq

        exported = torch.export.export(copy.deepcopy(model), args, kwargs).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(exported, quantizer)
        for batch_args, batch_kwargs in calibration:
            prepared(*batch_args, **batch_kwargs)
        return convert_pt2e(prepared)


def count_quantize_ops(gm: torch.fx.GraphModule) -> int:
    """Activation quantize calls in a Q/DQ graph (weights are stored quantized, not counted)."""
    return sum(
        1 for n in gm.graph.nodes
        if n.op == "call_function" and "quantize_per_tensor" in str(n.target) and "dequantize" not in str(n.target)
    )


def fit_weights_to_host(program) -> int:
    """Halve (toward zero) the int8 weights of the program's `ref.conv`/`ref.conv_add`/`ref.linear`
    ops whose int16 pairs could saturate on this host (an x86 CPU without AVX-512 VNNI), so that
    an op case built with random full-range weights tests the kernels exactly on every host.
    Returns how many weights were changed (0 on a host whose kernels are exact)."""
    from qir.accumulation import may_saturate
    from qir.dialects import ref
    from qir.dialects.aten import ParamOp
    from qir.dialects.quant import StorageCastOp
    from qir.params import constant_tensor
    from qir.target import host

    if not host().pairs_saturate:
        return 0
    changed = 0
    for op in program.module.walk():
        if isinstance(op, ref.ConvOp | ref.ConvAddOp | ref.LinearOp) and may_saturate(op, program.params):
            owner = op.weight.owner
            owner = owner.input.owner if isinstance(owner, StorageCastOp) else owner
            if isinstance(owner, ParamOp) and owner.value is None:
                weight = constant_tensor(op.weight, program.params)
                program.params[owner.param_name] = torch.div(weight, 2, rounding_mode="trunc")
                changed += 1
    return changed
