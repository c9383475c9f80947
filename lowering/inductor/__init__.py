"""The `inductor` backend: the Q/DQ form handed to `torch.compile`, with freezing.

Inductor recognises the `quantized_decomposed` quantize/dequantize patterns
that the quantized stage emits (the same form torchao's `convert_pt2e`
produces) and fuses them into its own int8 kernels; freezing folds the
weights into constants so their dequantization happens once. So this backend
lowers nothing in the IR: `lower-inductor` takes the quantized stage as it is
and records the target, and the emitted module compiles itself on its first
call (a compile of several seconds, where the other backends run at once).
"""

from __future__ import annotations

import copy

import torch

from qir.lowering.backend import Backend
from qir.lowering.capabilities import OpCapability, table

# Nothing is rewritten to ref ops: the table only says which quantizer fits (x86's recipe).
CAPABILITIES = table(
    OpCapability("ref.conv", posts=(None, "relu"), transposed=True),
    OpCapability("ref.conv_add", posts=(None, "relu")),
    OpCapability("ref.linear", posts=(None, "relu")),
    *(OpCapability(name) for name in ("ref.matmul", "ref.add", "ref.mul", "ref.cat", "ref.avg_pool",
                                      "ref.adaptive_avg_pool")),
    OpCapability("ref.lookup", functions=("hardswish.default", "sigmoid.default", "tanh.default")),
    int16_pairs=True,
)


class Compiled(torch.nn.Module):
    """The emitted Q/DQ module, compiled by inductor with freezing on first call."""

    def __init__(self, module: torch.fx.GraphModule):
        super().__init__()
        self.module = module
        self._compiled = None

    def forward(self, *args, **kwargs):
        if self._compiled is None:
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True
            self._compiled = torch.compile(self.module)
        with torch.no_grad():
            return self._compiled(*args, **kwargs)


def finalize(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A GraphModule called like `gm` whose one call runs the compiled module.

    Inductor compiles the flat graph (tensors in, tensors out); the wrapper keeps the
    original pytree calling convention around it."""
    import operator

    flat = torch.fx.GraphModule(gm, copy.deepcopy(gm.graph), class_name="QirQDQModule")
    flat.graph._codegen = torch.fx.graph.CodeGen()
    flat.recompile()
    outputs = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    graph = torch.fx.Graph()
    placeholders = [graph.placeholder(n.name) for n in gm.graph.nodes if n.op == "placeholder"]
    call = graph.call_module("compiled", tuple(placeholders))
    graph.output([graph.call_function(operator.getitem, (call, i)) for i in range(len(outputs))])
    graph._codegen = gm.graph._codegen
    wrapper = torch.fx.GraphModule({"compiled": Compiled(flat)}, graph, class_name="QirInductorModule")
    wrapper.qir_program = gm.qir_program  # type: ignore[attr-defined]
    return wrapper


BACKEND = Backend(
    name="inductor",
    description="the Q/DQ form compiled by torch.compile (inductor, freezing)",
    capabilities=CAPABILITIES,
    requires=("quantized",),
    finalize=finalize,
)
