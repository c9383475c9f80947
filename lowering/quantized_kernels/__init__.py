"""torch's quantized CPU kernels (`torch.ops.quantized.*`) as IR, for the backends that run them.

Not a backend itself: the `x86` and `qnnpack` backends each declare a dialect of these
kernels (`ops.declare_dialect`), take its emission table (`emit.emission_of`) and
lower to it with their own rules and capability tables; the rule functions
(`functions.FUNCTIONS`) and the Python patterns (`patterns.lowering_patterns`) they
share live here.
"""
