// RUN: %python %S/../../reference/Inputs/weights.py %s %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p lower-qnnpack | filecheck %s

// Linears, binary ops, cats, pools and elementwise functions: one QNNPACK-run kernel each,
// quantized tensors between them, from the first qnnpack.quantize to the last dequantize.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!a = !quant.uniform<u8:f32, 3.000000e-02:120>
!y = !quant.uniform<u8:f32, 4.000000e-02:125>
!r = !quant.uniform<u8:f32, 4.000000e-02>
!s = !quant.uniform<u8:f32, 3.906250e-03>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03,3.000000e-03,4.000000e-03}>

builtin.module attributes {qir.stage = "reference"} {
  // The float boundary: a quantize in, a dequantize out; a linear with its relu fused, one with
  // a hardtanh clamped after it.
  // CHECK-LABEL: func.func @linear(
  // CHECK-NEXT:    %[[Q:.*]] = qnnpack.quantize(%x) : (tensor<2x8xf32>) -> tensor<2x8x!quant.uniform<u8:f32, 2.000000e-02:128>>
  // CHECK:         %[[P:.*]] = qnnpack.linear_prepack(%{{.*}}, %{{.*}}) {engine = "qnnpack", input_scale = 2.000000e-02 : f64} : ({{.*}}) -> !qnnpack.packed_linear
  // CHECK-NEXT:    %[[L:.*]] = qnnpack.linear_relu(%[[Q]], %[[P]])
  // CHECK:         %[[P2:.*]] = qnnpack.linear_prepack
  // CHECK-NEXT:    %[[L2:.*]] = qnnpack.linear(%[[Q]], %[[P2]])
  // CHECK-NEXT:    %[[C:.*]] = qnnpack.clamp(%[[L2]]) {min = -1.000000e+00 : f64, max = 1.000000e+00 : f64}
  // CHECK-NEXT:    %[[D:.*]] = qnnpack.dequantize(%[[L]]) : (tensor<2x4x!quant.uniform<u8:f32, 4.000000e-02>>) -> tensor<2x4xf32>
  // CHECK-NEXT:    %[[D2:.*]] = qnnpack.dequantize(%[[C]])
  // CHECK-NEXT:    func.return %[[D]], %[[D2]]
  func.func @linear(%x: tensor<2x8xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
    %xq = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!x>
    %w = aten.param parameter "fc.weight_q" : tensor<4x8x!w>
    %b = aten.param parameter "fc.bias" : tensor<4xf32>
    %l = ref.linear(%xq, %w, %b) {post = "relu"} : (tensor<2x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x4x!r>
    %l2 = ref.linear(%xq, %w, %b) {post = "hardtanh", post_args = array<f64: -1.0, 1.0>} : (tensor<2x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x4x!y>
    %d = quant.dcast %l : tensor<2x4x!r> to tensor<2x4xf32>
    %d2 = quant.dcast %l2 : tensor<2x4x!y> to tensor<2x4xf32>
    func.return %d, %d2 : tensor<2x4xf32>, tensor<2x4xf32>
  }

  // CHECK-LABEL: func.func @binary(
  // CHECK-NEXT:    %[[S:.*]] = qnnpack.add(%a, %b) : ({{.*}}) -> tensor<2x3x4x4x!quant.uniform<u8:f32, 4.000000e-02:125>>
  // CHECK-NEXT:    %[[SR:.*]] = qnnpack.add_relu(%[[S]], %b) : ({{.*}}) -> tensor<2x3x4x4x!quant.uniform<u8:f32, 4.000000e-02>>
  // CHECK-NEXT:    %[[M:.*]] = qnnpack.mul(%a, %[[SR]])
  // CHECK-NEXT:    %[[K:.*]] = qnnpack.cat(%a, %[[M]]) {dim = 1 : i64}
  // CHECK-NEXT:    %[[MM:.*]] = qnnpack.matmul(%[[K]], %a)
  // CHECK-NEXT:    func.return %[[MM]]
  func.func @binary(%a: tensor<2x3x4x4x!a>, %b: tensor<2x3x4x4x!x>) -> tensor<2x6x4x4x!y> {
    %s = ref.add(%a, %b) : (tensor<2x3x4x4x!a>, tensor<2x3x4x4x!x>) -> tensor<2x3x4x4x!y>
    %sr = ref.add(%s, %b) {post = "relu"} : (tensor<2x3x4x4x!y>, tensor<2x3x4x4x!x>) -> tensor<2x3x4x4x!r>
    %m = ref.mul(%a, %sr) : (tensor<2x3x4x4x!a>, tensor<2x3x4x4x!r>) -> tensor<2x3x4x4x!a>
    %k = ref.cat(%a, %m) {dim = 1 : i64} : (tensor<2x3x4x4x!a>, tensor<2x3x4x4x!a>) -> tensor<2x6x4x4x!a>
    %mm = ref.matmul(%k, %a) : (tensor<2x6x4x4x!a>, tensor<2x3x4x4x!a>) -> tensor<2x6x4x4x!y>
    func.return %mm : tensor<2x6x4x4x!y>
  }

  // Pools keep their attributes; elementwise functions are QNNPACK's kernels where it has one
  // (its sigmoid only for the 1/256:0 output it takes), an exact table otherwise.
  // CHECK-LABEL: func.func @pools_and_functions(
  // CHECK-NEXT:    %[[AP:.*]] = qnnpack.avg_pool(%x) {kernel_size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, ceil_mode = true, count_include_pad = false}
  // CHECK-NEXT:    %[[GP:.*]] = qnnpack.adaptive_avg_pool(%[[AP]]) {output_size = array<i64: 1, 1>}
  // CHECK-NEXT:    %[[R:.*]] = qnnpack.relu(%x)
  // CHECK-NEXT:    %[[H:.*]] = qnnpack.hardswish(%[[R]]) : ({{.*}}) -> tensor<1x4x9x9x!quant.uniform<u8:f32, 4.000000e-02:125>>
  // CHECK-NEXT:    %[[S:.*]] = qnnpack.sigmoid(%[[H]]) : ({{.*}}) -> tensor<1x4x9x9x!quant.uniform<u8:f32, 3.906250e-03>>
  // CHECK-NEXT:    %[[S2:.*]] = qnnpack.lookup(%[[H]]) {fn = "sigmoid.default"} : ({{.*}}) -> tensor<1x4x9x9x!quant.uniform<u8:f32, 4.000000e-02>>
  // CHECK-NEXT:    %[[G:.*]] = qnnpack.lookup(%[[H]]) {fn = "gelu.default", fn_args = ["tanh"]}
  // CHECK-NEXT:    %[[RQ:.*]] = qnnpack.requantize(%[[G]])
  // CHECK-NEXT:    func.return %[[GP]], %[[S]], %[[S2]], %[[RQ]]
  func.func @pools_and_functions(%x: tensor<1x4x9x9x!x>) -> (tensor<1x4x1x1x!x>, tensor<1x4x9x9x!s>, tensor<1x4x9x9x!r>, tensor<1x4x9x9x!a>) {
    %ap = ref.avg_pool(%x) {kernel_size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, ceil_mode = true, count_include_pad = false} : (tensor<1x4x9x9x!x>) -> tensor<1x4x5x5x!x>
    %gp = ref.adaptive_avg_pool(%ap) {output_size = array<i64: 1, 1>} : (tensor<1x4x5x5x!x>) -> tensor<1x4x1x1x!x>
    %r = ref.lookup(%x) {fn = "relu.default"} : (tensor<1x4x9x9x!x>) -> tensor<1x4x9x9x!x>
    %h = ref.lookup(%r) {fn = "hardswish.default"} : (tensor<1x4x9x9x!x>) -> tensor<1x4x9x9x!y>
    %s = ref.lookup(%h) {fn = "sigmoid.default"} : (tensor<1x4x9x9x!y>) -> tensor<1x4x9x9x!s>
    %s2 = ref.lookup(%h) {fn = "sigmoid.default"} : (tensor<1x4x9x9x!y>) -> tensor<1x4x9x9x!r>
    %g = ref.lookup(%h) {fn = "gelu.default", fn_args = ["tanh"]} : (tensor<1x4x9x9x!y>) -> tensor<1x4x9x9x!y>
    %rq = ref.requantize(%g) : (tensor<1x4x9x9x!y>) -> tensor<1x4x9x9x!a>
    func.return %gp, %s, %s2, %rq : tensor<1x4x1x1x!x>, tensor<1x4x9x9x!s>, tensor<1x4x9x9x!r>, tensor<1x4x9x9x!a>
  }
}
