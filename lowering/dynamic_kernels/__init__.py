"""Dynamic quantization's kernels on oneDNN, shared by the backends that run them (`x86`, `onednn`):
their ops, declared in each backend's dialect (`ops.declare_ops`), their emission (`emit`), the
per-token quantize kernel inductor generates (`kernels`) and their lowering rules (`dynamic.rules`,
included with the dialect's name)."""
