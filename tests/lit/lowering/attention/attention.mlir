// RUN: qir-opt %s -p 'lower-x86{target=x86-avx512-vnni}' | filecheck %s
// RUN: qir-opt %s -p 'lower-onednn{target=x86-avx512-vnni}' | filecheck %s
// RUN: qir-opt %s -p lower-qnnpack | filecheck %s

// Float attention (what the X86 recipe leaves in float) becomes one qir::attention call in every
// native backend (torch's fused kernel or the eager chain, whichever is the faster for the call's
// size and thread count): softmax(q @ k^T * scale + mask) @ v, the scale a mul or a div, the mask
// optional.

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @masked(
  // CHECK-NEXT:    %[[O:.*]] = aten.op "qir::attention.default"(%q, %k, %v, %mask, 0.125) {module = "attn"} : (tensor<2x4x8x16xf32>, tensor<2x4x6x16xf32>, tensor<2x4x6x16xf32>, tensor<2x1x1x6xf32>) -> tensor<2x4x8x16xf32>
  // CHECK-NEXT:    func.return %[[O]]
  func.func @masked(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x6x16xf32>, %v: tensor<2x4x6x16xf32>, %mask: tensor<2x1x1x6xf32>) -> tensor<2x4x8x16xf32> {
    %kt = aten.op "transpose.int"(%k, 2, 3) : (tensor<2x4x6x16xf32>) -> tensor<2x4x16x6xf32>
    %s = aten.op "matmul.default"(%q, %kt) : (tensor<2x4x8x16xf32>, tensor<2x4x16x6xf32>) -> tensor<2x4x8x6xf32>
    %m = aten.op "mul.Tensor"(%s, 1.250000e-01) : (tensor<2x4x8x6xf32>) -> tensor<2x4x8x6xf32>
    %a = aten.op "add.Tensor"(%m, %mask) : (tensor<2x4x8x6xf32>, tensor<2x1x1x6xf32>) -> tensor<2x4x8x6xf32>
    %p = aten.op "softmax.int"(%a, -1) : (tensor<2x4x8x6xf32>) -> tensor<2x4x8x6xf32>
    %o = aten.op "matmul.default"(%p, %v) {module = "attn"} : (tensor<2x4x8x6xf32>, tensor<2x4x6x16xf32>) -> tensor<2x4x8x16xf32>
    func.return %o : tensor<2x4x8x16xf32>
  }

  // A division by sqrt(d), k transposed as (-1, -2), no mask.
  // CHECK-LABEL: func.func @divided(
  // CHECK-NEXT:    %[[O:.*]] = aten.op "qir::attention.default"(%q, %k, %v, none, 0.25)
  // CHECK-NEXT:    func.return %[[O]]
  func.func @divided(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
    %kt = aten.op "transpose.int"(%k, -1, -2) : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
    %s = aten.op "matmul.default"(%q, %kt) : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
    %m = aten.op "div.Tensor"(%s, 4.000000e+00) : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
    %p = aten.op "_softmax.default"(%m, 3, false) : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
    %o = aten.op "matmul.default"(%p, %v) : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
    func.return %o : tensor<2x4x8x16xf32>
  }

  // Attention probabilities the model also returns keep the eager chain.
  // CHECK-LABEL: func.func @probabilities_read(
  // CHECK-NOT:     qir::attention
  // CHECK:         aten.op "softmax.int"
  // CHECK:         func.return
  func.func @probabilities_read(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x8xf32>) {
    %kt = aten.op "transpose.int"(%k, 2, 3) : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
    %s = aten.op "matmul.default"(%q, %kt) : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
    %p = aten.op "softmax.int"(%s, -1) : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
    %o = aten.op "matmul.default"(%p, %v) : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
    func.return %o, %p : tensor<2x4x8x16xf32>, tensor<2x4x8x8xf32>
  }

  // A softmax over another dimension, or q @ k without the transpose, is something else.
  // CHECK-LABEL: func.func @other_softmax(
  // CHECK-NOT:     qir::attention
  // CHECK:         func.return
  func.func @other_softmax(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
    %kt = aten.op "transpose.int"(%k, 2, 3) : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
    %s = aten.op "matmul.default"(%q, %kt) : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
    %p = aten.op "softmax.int"(%s, 2) : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
    %o = aten.op "matmul.default"(%p, %v) : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
    func.return %o : tensor<2x4x8x16xf32>
  }
}
