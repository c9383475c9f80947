// RUN: qir-opt %s -p 'lower-x86{target=x86-avx512-vnni}' | filecheck %s
// Weights: conv_add.safetensors beside this file (random, seeded; lowering reads none of their values).

// ref.conv_add (a conv whose result a residual is added to, then maybe relu): oneDNN's fused
// conv+add(+relu) kernels, whose weights must be packed by oneDNN, whatever the x86 engine
// would choose.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!a = !quant.uniform<u8:f32, 3.000000e-02:10>
!y = !quant.uniform<u8:f32, 4.000000e-02:5>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @residual(
  // CHECK:         %[[P:.*]] = x86.conv_prepack(%{{.*}}, %{{.*}}) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, engine = "onednn", input_scale = 2.000000e-02 : f64, module = "layer1.0.conv2"}
  // CHECK-NEXT:    %[[S:.*]] = x86.conv2d_add(%x, %a, %[[P]]) {module = "layer1.0.conv2"} : (tensor<1x2x6x6x!quant.uniform<u8:f32, 2.000000e-02:128>>, tensor<1x2x6x6x!quant.uniform<u8:f32, 3.000000e-02:10>>, !x86.packed_conv) -> tensor<1x2x6x6x!quant.uniform<u8:f32, 4.000000e-02:5>>
  // CHECK:         %[[P2:.*]] = x86.conv_prepack({{.*}}engine = "onednn"
  // CHECK-NEXT:    %[[R:.*]] = x86.conv2d_add_relu(%[[S]], %a, %[[P2]]) : ({{.*}}) -> tensor<1x2x6x6x!quant.uniform<u8:f32, 4.000000e-02:5>>
  // CHECK-NEXT:    func.return %[[S]], %[[R]]
  // CHECK-NOT:     ref.
  func.func @residual(%x: tensor<1x2x6x6x!x>, %a: tensor<1x2x6x6x!a>) -> (tensor<1x2x6x6x!y>, tensor<1x2x6x6x!y>) {
    %w = aten.param parameter "conv.weight_q" : tensor<2x2x3x3x!w>
    %b = aten.param parameter "conv.bias" : tensor<2xf32>
    %s = ref.conv_add(%x, %w, %b, %a) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, module = "layer1.0.conv2"} : (tensor<1x2x6x6x!x>, tensor<2x2x3x3x!w>, tensor<2xf32>, tensor<1x2x6x6x!a>) -> tensor<1x2x6x6x!y>
    %r = ref.conv_add(%s, %w, %b, %a) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, post = "relu"} : (tensor<1x2x6x6x!y>, tensor<2x2x3x3x!w>, tensor<2xf32>, tensor<1x2x6x6x!a>) -> tensor<1x2x6x6x!y>
    func.return %s, %r : tensor<1x2x6x6x!y>, tensor<1x2x6x6x!y>
  }
}
