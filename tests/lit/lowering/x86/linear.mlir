// RUN: qir-opt %s -p 'lower-x86{target=x86-avx512-vnni}' | filecheck %s
// Weights: linear.safetensors beside this file (random, seeded; lowering reads none of their values).

// ref.linear to a quantized result: quantized.linear (inputs of any rank) with weights prepacked
// for the engine chosen for the product (fbgemm for one this small; linear_engine.mlir shows the
// choice), relu fused; a fused hardtanh is the linear and then a clamp of its output.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 1.000000e-02:7>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03,3.000000e-03}>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @linears(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "fc.weight_q"
  // CHECK-NEXT:    %[[B:.*]] = aten.param parameter "fc.bias"
  // CHECK-NEXT:    %[[P:.*]] = x86.linear_prepack(%[[W]], %[[B]]) {engine = "fbgemm", input_scale = 2.000000e-02 : f64, module = "fc"} : (tensor<3x8x!quant.uniform<i8:f32:0, {{.*}}>>, tensor<3xf32>) -> !x86.packed_linear
  // CHECK-NEXT:    %[[L:.*]] = x86.linear(%x, %[[P]]) {module = "fc"} : (tensor<2x5x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, !x86.packed_linear) -> tensor<2x5x3x!quant.uniform<u8:f32, 1.000000e-02:7>>
  // CHECK-NEXT:    %[[P2:.*]] = x86.linear_prepack(%[[W]], %[[B]]) {engine = "fbgemm", input_scale = 2.000000e-02 : f64}
  // CHECK-NEXT:    %[[R:.*]] = x86.linear_relu(%x, %[[P2]])
  // CHECK-NEXT:    %[[P3:.*]] = x86.linear_prepack(%[[W]], %[[B]])
  // CHECK-NEXT:    %[[H:.*]] = x86.linear(%x, %[[P3]]) : ({{.*}}) -> tensor<2x5x3x!quant.uniform<u8:f32, 1.000000e-02:7>>
  // CHECK-NEXT:    %[[C:.*]] = x86.clamp(%[[H]]) {min = -1.000000e+00 : f64, max = 5.000000e-01 : f64}
  // CHECK-NEXT:    func.return %[[L]], %[[R]], %[[C]]
  // CHECK-NOT:     ref.linear
  func.func @linears(%x: tensor<2x5x8x!x>) -> (tensor<2x5x3x!y>, tensor<2x5x3x!y>, tensor<2x5x3x!y>) {
    %w = aten.param parameter "fc.weight_q" : tensor<3x8x!w>
    %b = aten.param parameter "fc.bias" : tensor<3xf32>
    %l = ref.linear(%x, %w, %b) {module = "fc"} : (tensor<2x5x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<2x5x3x!y>
    %r = ref.linear(%x, %w, %b) {post = "relu"} : (tensor<2x5x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<2x5x3x!y>
    %h = ref.linear(%x, %w, %b) {post = "hardtanh", post_args = array<f64: -1.0, 0.5>} : (tensor<2x5x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<2x5x3x!y>
    func.return %l, %r, %h : tensor<2x5x3x!y>, tensor<2x5x3x!y>, tensor<2x5x3x!y>
  }
}
