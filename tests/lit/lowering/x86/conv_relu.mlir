// RUN: qir-opt %s -p 'lower-x86{target=x86-avx512-vnni}' | filecheck %s
// Weights: conv_relu.safetensors beside this file (random, seeded; lowering reads none of their values).

// ref.conv with a fused relu: the kernels with the relu inside, one per spatial rank. A fused
// hardtanh (ReLU6) has no kernel: the conv, then a clamp of its quantized output to the
// bounds (exact: both are monotone, and the clamp keeps the parameters).

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 1.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @relu(
  // CHECK:         %[[P1:.*]] = x86.conv_prepack({{.*}}) {stride = array<i64: 1>, {{.*}}, engine = "x86", input_scale = 2.000000e-02 : f64}
  // CHECK-NEXT:    %[[C1:.*]] = x86.conv1d_relu(%x1, %[[P1]])
  // CHECK:         %[[P2:.*]] = x86.conv_prepack({{.*}}) {stride = array<i64: 1, 1>, {{.*}}, engine = "x86", input_scale = 2.000000e-02 : f64}
  // CHECK-NEXT:    %[[C2:.*]] = x86.conv2d_relu(%x2, %[[P2]]) : (tensor<1x3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, !x86.packed_conv) -> tensor<1x2x6x6x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK:         %[[P3:.*]] = x86.conv_prepack({{.*}}) {stride = array<i64: 1, 1, 1>, {{.*}}, engine = "x86", input_scale = 2.000000e-02 : f64}
  // CHECK-NEXT:    %[[C3:.*]] = x86.conv3d_relu(%x3, %[[P3]])
  // CHECK-NEXT:    func.return %[[C1]], %[[C2]], %[[C3]]
  func.func @relu(%x1: tensor<1x3x8x!x>, %x2: tensor<1x3x8x8x!x>, %x3: tensor<1x3x4x4x4x!x>) -> (tensor<1x2x6x!y>, tensor<1x2x6x6x!y>, tensor<1x2x2x2x2x!y>) {
    %w1 = aten.param parameter "c1.weight_q" : tensor<2x3x3x!w>
    %b1 = aten.param parameter "c1.bias" : tensor<2xf32>
    %c1 = ref.conv(%x1, %w1, %b1) {stride = array<i64: 1>, padding = array<i64: 0>, dilation = array<i64: 1>, groups = 1 : i64, post = "relu"} : (tensor<1x3x8x!x>, tensor<2x3x3x!w>, tensor<2xf32>) -> tensor<1x2x6x!y>
    %w2 = aten.param parameter "c2.weight_q" : tensor<2x3x3x3x!w>
    %b2 = aten.param parameter "c2.bias" : tensor<2xf32>
    %c2 = ref.conv(%x2, %w2, %b2) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64, post = "relu"} : (tensor<1x3x8x8x!x>, tensor<2x3x3x3x!w>, tensor<2xf32>) -> tensor<1x2x6x6x!y>
    %w3 = aten.param parameter "c3.weight_q" : tensor<2x3x3x3x3x!w>
    %b3 = aten.param parameter "c3.bias" : tensor<2xf32>
    %c3 = ref.conv(%x3, %w3, %b3) {stride = array<i64: 1, 1, 1>, padding = array<i64: 0, 0, 0>, dilation = array<i64: 1, 1, 1>, groups = 1 : i64, post = "relu"} : (tensor<1x3x4x4x4x!x>, tensor<2x3x3x3x3x!w>, tensor<2xf32>) -> tensor<1x2x2x2x2x!y>
    func.return %c1, %c2, %c3 : tensor<1x2x6x!y>, tensor<1x2x6x6x!y>, tensor<1x2x2x2x2x!y>
  }

  // CHECK-LABEL: func.func @hardtanh(
  // CHECK:         %[[P:.*]] = x86.conv_prepack(%{{.*}}, %{{.*}}) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, engine = "x86", input_scale = 2.000000e-02 : f64, module = "features.0"}
  // CHECK-NEXT:    %[[C:.*]] = x86.conv2d(%x, %[[P]]) {module = "features.0"} : ({{.*}}) -> tensor<1x2x8x8x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK-NEXT:    %[[H:.*]] = x86.clamp(%[[C]]) {min = 0.000000e+00 : f64, max = 6.000000e+00 : f64, module = "features.0"} : (tensor<1x2x8x8x!quant.uniform<u8:f32, 1.000000e-02>>) -> tensor<1x2x8x8x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK-NEXT:    func.return %[[H]]
  // CHECK-NOT:     ref.conv
  func.func @hardtanh(%x: tensor<1x3x8x8x!x>) -> tensor<1x2x8x8x!y> {
    %w = aten.param parameter "c2.weight_q" : tensor<2x3x3x3x!w>
    %b = aten.param parameter "c2.bias" : tensor<2xf32>
    %y = ref.conv(%x, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, post = "hardtanh", post_args = array<f64: 0.0, 6.0>, module = "features.0"} : (tensor<1x3x8x8x!x>, tensor<2x3x3x3x!w>, tensor<2xf32>) -> tensor<1x2x8x8x!y>
    func.return %y : tensor<1x2x8x8x!y>
  }
}
