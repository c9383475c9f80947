"""qir's own torch operators: what a lowered program calls that torch has no operator for.

`qir::attention(q, k, v, mask, scale)`: float attention, `softmax(q @ k^T * scale + mask) @ v`
(the native backends' fusion of the chain a model exports, `qir.lowering.attention`), run each
call by whichever of torch's two ways is the faster there:

* torch's fused `scaled_dot_product_attention`, with one thread, and with more when the scores
  (`batch x heads x queries x keys` float32 values) take more than `EAGER_SCORES_BYTES`;
* the eager chain (batched matmul, scale, mask, softmax, matmul) with two threads or more on
  smaller scores, where the fused kernel's per-block work and its threads' start cost more than
  the chain's temporaries, which stay in the caches.

`python bench/attention.py --grid` times both on 15 shapes whose scores take 0.05 to 16 MB. On
AMD EPYC (AVX-512 VNNI) at 2 threads the eager chain was the faster on all 9 shapes up to 1.5 MB
(1.09x-3.0x; MiniLM's 16 x 12 heads x 32 tokens: 0.32 against 0.58 ms a layer) and the fused
kernel on the 3 from 6 MB up (its time 0.66x-0.86x). At 3 MB the eager chain's time varies
several times from one run of the bench to the next, and so it does at one thread on smaller
scores: there the fused kernel, steady, is taken. The two differ by float rounding only (the
fused kernel computes the softmax online), as the fusion itself does.

The operator is registered when this module is imported (`qir.dialects.aten.resolve_overload`
imports it for the `qir` namespace), with a fake implementation for tracers and the fused
kernel's gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EAGER_SCORES_BYTES = 2 << 20
"""Scores up to this many bytes run the eager chain when torch runs on two threads or more."""


@torch.library.custom_op("qir::attention", mutates_args=())
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
              scale: float) -> torch.Tensor:
    """`softmax(q @ k^T * scale + mask) @ v` for 4-D `q`, `k`, `v` (see the module docstring)."""
    batch, heads, queries, _ = q.shape
    small = batch * heads * queries * k.shape[2] * q.element_size() <= EAGER_SCORES_BYTES
    if torch.get_num_threads() > 1 and small and (mask is None or mask.is_floating_point()):
        scores = torch.matmul(q, k.transpose(-2, -1)).mul_(scale)
        if mask is not None:
            scores = scores + mask
        return torch.matmul(torch.softmax(scores, -1), v)
    return F.scaled_dot_product_attention(q, k, v, mask, 0.0, False, scale=scale)


@attention.register_fake
def _(q, k, v, mask, scale):
    return q.new_empty((*q.shape[:-1], v.shape[-1]))


def _save(ctx, inputs, output) -> None:
    q, k, v, mask, scale = inputs
    ctx.save_for_backward(q, k, v, mask)
    ctx.scale = scale


def _backward(ctx, grad: torch.Tensor):
    """The gradients of the fused kernel's attention (the same function, up to float rounding)."""
    leaves = [None if t is None else t.detach().requires_grad_(t.requires_grad) for t in ctx.saved_tensors]
    wanted = [t for t in leaves if t is not None and t.requires_grad]
    with torch.enable_grad():
        out = F.scaled_dot_product_attention(*leaves[:3], leaves[3], 0.0, False, scale=ctx.scale)
    found = iter(torch.autograd.grad(out, wanted, grad) if wanted else ())
    return (*(next(found) if t is not None and t.requires_grad else None for t in leaves), None)


attention.register_autograd(_backward, setup_context=_save)
