// RUN: qir-opt %s -p lower-reference | filecheck %s
// Weights: lower.safetensors beside this file (random, seeded; lowering reads none of their values).

// The reference backend's kernels are the ref ops themselves (emitted as exact integer ATen
// arithmetic), so lower-reference rewrites nothing: every ref op, cast and float op stays as it
// is, and the module records the stage and the target.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<i8:f32, 1.000000e-02:-3>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

// CHECK: builtin.module attributes {qir.stage = "lowered", qir.backend = "reference"} {
// CHECK-NEXT:  func.func @forward(%x: tensor<1x3x8x8xf32>) -> tensor<1x2x8x8xf32> {
// CHECK-NEXT:    %[[X:.*]] = quant.qcast %x : tensor<1x3x8x8xf32> to tensor<1x3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>
// CHECK-NEXT:    %[[W:.*]] = aten.param parameter "c.weight_q"
// CHECK-NEXT:    %[[B:.*]] = aten.param parameter "c.bias"
// CHECK-NEXT:    %[[C:.*]] = ref.conv(%[[X]], %[[W]], %[[B]]) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, post = "hardtanh", post_args = array<f64: 0.000000e+00, 6.000000e+00>, module = "c"} : (tensor<1x3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, tensor<2x3x3x3x!quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>>, tensor<2xf32>) -> tensor<1x2x8x8x!quant.uniform<i8:f32, 1.000000e-02:-3>>
// CHECK-NEXT:    %[[S:.*]] = ref.add(%[[C]], %[[C]]) : (tensor<1x2x8x8x!quant.uniform<i8:f32, 1.000000e-02:-3>>, tensor<1x2x8x8x!quant.uniform<i8:f32, 1.000000e-02:-3>>) -> tensor<1x2x8x8x!quant.uniform<i8:f32, 1.000000e-02:-3>>
// CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[S]] : tensor<1x2x8x8x!quant.uniform<i8:f32, 1.000000e-02:-3>> to tensor<1x2x8x8xf32>
// CHECK-NEXT:    %[[E:.*]] = aten.op "exp.default"(%[[D]]) : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
// CHECK-NEXT:    func.return %[[E]] : tensor<1x2x8x8xf32>
builtin.module attributes {qir.stage = "reference"} {
  func.func @forward(%x: tensor<1x3x8x8xf32>) -> tensor<1x2x8x8xf32> {
    %x_q = quant.qcast %x : tensor<1x3x8x8xf32> to tensor<1x3x8x8x!x>
    %w = aten.param parameter "c.weight_q" : tensor<2x3x3x3x!w>
    %b = aten.param parameter "c.bias" : tensor<2xf32>
    %c = ref.conv(%x_q, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, post = "hardtanh", post_args = array<f64: 0.0, 6.0>, module = "c"} : (tensor<1x3x8x8x!x>, tensor<2x3x3x3x!w>, tensor<2xf32>) -> tensor<1x2x8x8x!y>
    %s = ref.add(%c, %c) : (tensor<1x2x8x8x!y>, tensor<1x2x8x8x!y>) -> tensor<1x2x8x8x!y>
    %d = quant.dcast %s : tensor<1x2x8x8x!y> to tensor<1x2x8x8xf32>
    %e = aten.op "exp.default"(%d) : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
    func.return %e : tensor<1x2x8x8xf32>
  }
}
