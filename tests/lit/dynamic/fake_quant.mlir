// RUN: not qir-opt %s -p 'insert-observers{fake-quant=true}' 2>&1 | filecheck %s --check-prefix=QAT

// Quantization-aware training: a dynamic spec has no fake quantization.
builtin.module attributes {qir.stage = "annotated"} {
  func.func @forward(%x: tensor<2x3xf32>) -> tensor<2x2xf32> {
    %w = aten.param constant "w" = dense<0.5> : tensor<2x3xf32>
    // QAT: fake_quant.mlir:8:5: error: pass 'insert-observers' failed: a dynamic spec has no fake quantization
    %l = aten.op "linear.default"(%x, %w) {qin = [#obs.spec<u8[0:255], affine, minmax, dynamic, group 0>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>]} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x2xf32>
    func.return %l : tensor<2x2xf32>
  }
}
