// RUN: %python %S/../../reference/Inputs/weights.py %s %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p lower-qnnpack | filecheck %s

// ref.conv on QNNPACK: weights prepacked (at emission) by QNNPACK (`engine = "qnnpack"`), with
// the input scale that turns an i32 bias back into the float bias the kernels take; relu fused,
// hardtanh as a clamp of the quantized result; per-channel weights with nonzero zero points
// (QNNPACK takes them; x86 does not); transposed 1-2d convs, relu after them.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 1.000000e-02:3>
!r = !quant.uniform<u8:f32, 1.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03:-2,2.000000e-03:0,3.000000e-03:1,4.000000e-03:5}>
!wt = !quant.uniform<i8:f32, 5.000000e-03:-3>
!wc = !quant.uniform<i8:f32:1, {1.000000e-03,2.000000e-03,3.000000e-03,4.000000e-03}>

// CHECK: builtin.module attributes {qir.stage = "lowered", qir.backend = "qnnpack"}
builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @conv2d(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "c.weight_q"
  // CHECK-NEXT:    %[[B:.*]] = aten.param parameter "c.bias"
  // CHECK-NEXT:    %[[P:.*]] = qnnpack.conv_prepack(%[[W]], %[[B]]) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, engine = "qnnpack", input_scale = 2.000000e-02 : f64, module = "c"} : (tensor<4x3x3x3x!quant.uniform<i8:f32:0, {1.000000e-03:-2,{{.*}}}>>, tensor<4xf32>) -> !qnnpack.packed_conv
  // CHECK-NEXT:    %[[Y:.*]] = qnnpack.conv2d_relu(%x, %[[P]]) {module = "c"} : (tensor<1x3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, !qnnpack.packed_conv) -> tensor<1x4x8x8x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @conv2d(%x: tensor<1x3x8x8x!x>) -> tensor<1x4x8x8x!r> {
    %w = aten.param parameter "c.weight_q" : tensor<4x3x3x3x!w>
    %b = aten.param parameter "c.bias" : tensor<4xf32>
    %y = ref.conv(%x, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, post = "relu", module = "c"} : (tensor<1x3x8x8x!x>, tensor<4x3x3x3x!w>, tensor<4xf32>) -> tensor<1x4x8x8x!r>
    func.return %y : tensor<1x4x8x8x!r>
  }

  // 1-D and 3-D convs (a per-tensor weight with a zero point), a depthwise conv with a ReLU6.
  // CHECK-LABEL: func.func @ranks(
  // CHECK:         %[[P1:.*]] = qnnpack.conv_prepack({{.*}}) {stride = array<i64: 2>, padding = array<i64: 0>, dilation = array<i64: 1>, groups = 1 : i64, engine = "qnnpack", input_scale = 2.000000e-02 : f64}
  // CHECK-NEXT:    %[[C1:.*]] = qnnpack.conv1d(%x1, %[[P1]]) : ({{.*}}, !qnnpack.packed_conv) -> tensor<1x4x4x!quant.uniform<u8:f32, 1.000000e-02:3>>
  // CHECK:         %[[P3:.*]] = qnnpack.conv_prepack({{.*}}) {stride = array<i64: 1, 1, 1>, padding = array<i64: 1, 1, 1>, dilation = array<i64: 1, 1, 1>, groups = 1 : i64, engine = "qnnpack", input_scale = 2.000000e-02 : f64}
  // CHECK-NEXT:    %[[C3:.*]] = qnnpack.conv3d_relu(%x3, %[[P3]]) : ({{.*}}, !qnnpack.packed_conv) -> tensor<1x4x4x4x4x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK:         %[[PD:.*]] = qnnpack.conv_prepack({{.*}}) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 3 : i64, engine = "qnnpack", input_scale = 2.000000e-02 : f64}
  // CHECK-NEXT:    %[[CD:.*]] = qnnpack.conv2d(%x2, %[[PD]]) : ({{.*}}, !qnnpack.packed_conv) -> tensor<1x3x8x8x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK-NEXT:    %[[R6:.*]] = qnnpack.clamp(%[[CD]]) {min = 0.000000e+00 : f64, max = 6.000000e+00 : f64} : (tensor<1x3x8x8x!quant.uniform<u8:f32, 1.000000e-02>>) -> tensor<1x3x8x8x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK-NOT:     ref.
  // CHECK:         func.return %[[C1]], %[[C3]], %[[R6]]
  func.func @ranks(%x1: tensor<1x3x8x!x>, %x3: tensor<1x3x4x4x4x!x>, %x2: tensor<1x3x8x8x!x>) -> (tensor<1x4x4x!y>, tensor<1x4x4x4x4x!r>, tensor<1x3x8x8x!r>) {
    %w1 = aten.param parameter "c1.weight_q" : tensor<4x3x3x!wt>
    %b1 = aten.param parameter "c1.bias" : tensor<4xf32>
    %c1 = ref.conv(%x1, %w1, %b1) {stride = array<i64: 2>, padding = array<i64: 0>, dilation = array<i64: 1>, groups = 1 : i64} : (tensor<1x3x8x!x>, tensor<4x3x3x!wt>, tensor<4xf32>) -> tensor<1x4x4x!y>
    %w3 = aten.param parameter "c3.weight_q" : tensor<4x3x3x3x3x!w>
    %b3 = aten.param parameter "c3.bias" : tensor<4xf32>
    %c3 = ref.conv(%x3, %w3, %b3) {stride = array<i64: 1, 1, 1>, padding = array<i64: 1, 1, 1>, dilation = array<i64: 1, 1, 1>, groups = 1 : i64, post = "relu"} : (tensor<1x3x4x4x4x!x>, tensor<4x3x3x3x3x!w>, tensor<4xf32>) -> tensor<1x4x4x4x4x!r>
    %wd = aten.param parameter "dw.weight_q" : tensor<3x1x3x3x!wt>
    %bd = aten.param parameter "dw.bias" : tensor<3xf32>
    %cd = ref.conv(%x2, %wd, %bd) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 3 : i64, post = "hardtanh", post_args = array<f64: 0.0, 6.0>} : (tensor<1x3x8x8x!x>, tensor<3x1x3x3x!wt>, tensor<3xf32>) -> tensor<1x3x8x8x!r>
    func.return %c1, %c3, %cd : tensor<1x4x4x!y>, tensor<1x4x4x4x4x!r>, tensor<1x3x8x8x!r>
  }

  // Transposed convs: packed by QNNPACK with their output padding; a per-channel weight (axis 1)
  // without groups; no fused relu kernel, so a relu of the quantized result after it.
  // CHECK-LABEL: func.func @transposed(
  // CHECK:         %[[PT:.*]] = qnnpack.conv_prepack({{.*}}) {stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, transposed = true, output_padding = array<i64: 1, 1>, engine = "qnnpack", input_scale = 2.000000e-02 : f64} : (tensor<3x4x3x3x!quant.uniform<i8:f32:1, {{.*}}>>, tensor<4xf32>) -> !qnnpack.packed_conv
  // CHECK-NEXT:    %[[T:.*]] = qnnpack.conv_transpose2d(%x, %[[PT]]) : ({{.*}}) -> tensor<1x4x10x10x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK-NEXT:    %[[TR:.*]] = qnnpack.relu(%[[T]])
  // CHECK:         %[[PT1:.*]] = qnnpack.conv_prepack({{.*}}) {stride = array<i64: 2>, padding = array<i64: 0>, dilation = array<i64: 1>, groups = 1 : i64, transposed = true, output_padding = array<i64: 0>, engine = "qnnpack", input_scale = 2.000000e-02 : f64}
  // CHECK-NEXT:    %[[T1:.*]] = qnnpack.conv_transpose1d(%x1, %[[PT1]])
  // CHECK-NEXT:    func.return %[[TR]], %[[T1]]
  func.func @transposed(%x: tensor<1x3x5x5x!x>, %x1: tensor<1x3x5x!x>) -> (tensor<1x4x10x10x!r>, tensor<1x4x11x!y>) {
    %w = aten.param parameter "t.weight_q" : tensor<3x4x3x3x!wc>
    %b = aten.param parameter "t.bias" : tensor<4xf32>
    %t = ref.conv(%x, %w, %b) {stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, transposed = true, output_padding = array<i64: 1, 1>, post = "relu"} : (tensor<1x3x5x5x!x>, tensor<3x4x3x3x!wc>, tensor<4xf32>) -> tensor<1x4x10x10x!r>
    %w1 = aten.param parameter "t1.weight_q" : tensor<3x4x3x!wt>
    %b1 = aten.param parameter "t1.bias" : tensor<4xf32>
    %t1 = ref.conv(%x1, %w1, %b1) {stride = array<i64: 2>, padding = array<i64: 0>, dilation = array<i64: 1>, groups = 1 : i64, transposed = true, output_padding = array<i64: 0>} : (tensor<1x3x5x!x>, tensor<3x4x3x!wt>, tensor<4xf32>) -> tensor<1x4x11x!y>
    func.return %t, %t1 : tensor<1x4x10x10x!r>, tensor<1x4x11x!y>
  }
}
