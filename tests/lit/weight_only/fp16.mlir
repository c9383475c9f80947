// RUN: qir-opt %s -p 'annotate{quantizer=weight-fp16}' | filecheck %s --check-prefix=ANNOTATE
// RUN: qir-opt %s -p 'annotate{quantizer=weight-fp16},propagate-annotations,insert-observers' | filecheck %s --check-prefix=OBSERVE
// RUN: qir-opt %s -p 'annotate{quantizer=weight-fp16},propagate-annotations,insert-observers,convert,canonicalize' | filecheck %s --check-prefix=CONVERT
// RUN: qir-opt %s -p 'annotate{quantizer=weight-fp16},propagate-annotations,insert-observers,convert,canonicalize,reference-rewrite' | filecheck %s --check-prefix=REF

// Weight-only float16: PT2E's float16 spec (`#obs.cast<f16>`), no statistics; convert stores the
// rounded weight and reads it through a conversion back to float32, which reference-rewrite
// folds into the weight-only op.

builtin.module {
  func.func @forward(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
    %w = aten.param constant "w" = dense<0.1> : tensor<4x8xf32>
    %y = aten.op "linear.default"(%x, %w) : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
    func.return %y : tensor<2x4xf32>
  }
}

// ANNOTATE:      aten.op "linear.default"(%x, %w) {qin = [none, #obs.cast<f16>]}

// OBSERVE:      %[[W:.*]] = obs.observe %w {id = "obs0", spec = #obs.cast<f16, group 0>} : tensor<4x8xf32>
// OBSERVE-NEXT: aten.op "linear.default"(%x, %[[W]])

// CONVERT:      %[[W16:.*]] = aten.param constant "w_f16" : tensor<4x8xf16>
// CONVERT-NEXT: %[[W32:.*]] = aten.op "_to_copy.default"(%[[W16]], dtype = #aten.dtype<float32>) : (tensor<4x8xf16>) -> tensor<4x8xf32>
// CONVERT-NEXT: aten.op "linear.default"(%x, %[[W32]])

// REF:      %[[W16:.*]] = aten.param constant "w_f16" : tensor<4x8xf16>
// REF-NEXT: %[[Y:.*]] = ref.weight_only_linear(%x, %[[W16]]) : (tensor<2x8xf32>, tensor<4x8xf16>) -> tensor<2x4xf32>
// REF-NEXT: func.return %[[Y]]
