"""Recurrent layers imported as their cells' linears when a quantizer configures them.

`torch.export` (torch 2.13) keeps `nn.LSTM` / `nn.GRU` / `nn.RNN` as one op, `aten.lstm.input`
(`gru.input`, `rnn_tanh.input`, ...), its weights a list operand: nothing a quantizer can
annotate. torch's own decomposition of those ops alone (`ExportedProgram.run_decompositions`
with a table of just them, every other op kept as exported) unrolls the layer over the
sequence into `aten.linear` calls on `W_ih` and `W_hh` and the cell's elementwise gates, with
the layer's module path on each op: the projections `quantize_dynamic` quantizes, now linears
every quantizer, `set_module_name` and `set_object_type(nn.LSTM, ...)` see.

`prepare` / `prepare_qat` ask for it (`decomposed_for`) only when the quantizer configures an
RNN op: a layer left float keeps torch's one fused kernel. The unrolled program has the
example's sequence length, as any exported RNN does (`torch.export` itself refuses a dynamic
sequence length through `nn.LSTM`); other dimensions stay dynamic. A program given as IR
(`qir.Program`) has no ExportedProgram to decompose: its RNN ops stay one op, and
`DynamicQuantizer` warns about them.
"""

from __future__ import annotations

from functools import cache

import torch
from torch.export import ExportedProgram

from qir.dialects.aten import AtenOp
from qir.program import Program

RNN_OPS = frozenset({"lstm", "gru", "rnn_tanh", "rnn_relu"})
"""The ops `torch.export` keeps a recurrent layer as."""


@cache
def rnn_decompositions() -> dict:
    """torch's decompositions of the RNN ops (every overload), and of nothing else."""
    table = torch.export.default_decompositions()
    return {op: table[op] for op in table if op.overloadpacket.__name__ in RNN_OPS}


def configures(quantizer, op) -> bool:
    """Whether `quantizer` gives `op` a config (a quantizer without per-op configs: no)."""
    from qir.quantizer import ComposableQuantizer, ConfigurableQuantizer

    if isinstance(quantizer, ComposableQuantizer):
        return any(configures(q, op) for q in quantizer.quantizers)
    return isinstance(quantizer, ConfigurableQuantizer) and quantizer.config_for(op) is not None


def decomposed_for(ep: ExportedProgram, program: Program, quantizer) -> Program:
    """`program` (imported from `ep`) again, its RNN ops decomposed into linears, if `quantizer`
    configures one of them; else `program` itself. `ep` is not changed."""
    if not any(isinstance(op, AtenOp) and op.op_name in RNN_OPS and configures(quantizer, op)
               for op in program.module.walk()):
        return program
    from qir.importer import import_program

    return import_program(ep.run_decompositions(rnn_decompositions()))
