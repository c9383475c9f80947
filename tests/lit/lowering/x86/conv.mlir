// RUN: qir-opt %s -p 'lower-x86{target=x86-avx512-vnni}' | filecheck %s
// Weights: conv.safetensors beside this file (random, seeded; lowering reads none of their values).

// ref.conv without a post op: one kernel per spatial rank, its weight and bias prepacked
// (at emission) under the x86 engine with the input scale, which turns an i32 bias back into
// the float bias the kernels take. Provenance moves to the new ops.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 1.000000e-02:3>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03,3.000000e-03,4.000000e-03}>
!wt = !quant.uniform<i8:f32, 5.000000e-03>

// CHECK: builtin.module attributes {qir.stage = "lowered", qir.backend = "x86", qir.target = "x86-avx512-vnni", qir.requires = "avx512_vnni"}
builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @conv2d(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "c.weight_q"
  // CHECK-NEXT:    %[[B:.*]] = aten.param parameter "c.bias"
  // CHECK-NEXT:    %[[P:.*]] = x86.conv_prepack(%[[W]], %[[B]]) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, engine = "x86", input_scale = 2.000000e-02 : f64, module = "c", module_type = "torch.nn.modules.conv.Conv2d"} : (tensor<4x3x3x3x!quant.uniform<i8:f32:0, {{.*}}>>, tensor<4xf32>) -> !x86.packed_conv
  // CHECK-NEXT:    %[[Y:.*]] = x86.conv2d(%x, %[[P]]) {module = "c", module_type = "torch.nn.modules.conv.Conv2d"} : (tensor<1x3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, !x86.packed_conv) -> tensor<1x4x8x8x!quant.uniform<u8:f32, 1.000000e-02:3>>
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @conv2d(%x: tensor<1x3x8x8x!x>) -> tensor<1x4x8x8x!y> {
    %w = aten.param parameter "c.weight_q" : tensor<4x3x3x3x!w>
    %b = aten.param parameter "c.bias" : tensor<4xf32>
    %y = ref.conv(%x, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, module = "c", module_type = "torch.nn.modules.conv.Conv2d"} : (tensor<1x3x8x8x!x>, tensor<4x3x3x3x!w>, tensor<4xf32>) -> tensor<1x4x8x8x!y>
    func.return %y : tensor<1x4x8x8x!y>
  }

  // 1-D and 3-D convs, a depthwise one with stride and dilation (groups kept), a per-tensor weight.
  // CHECK-LABEL: func.func @ranks(
  // CHECK:         %[[P1:.*]] = x86.conv_prepack({{.*}}) {stride = array<i64: 2>, padding = array<i64: 0>, dilation = array<i64: 1>, groups = 1 : i64, engine = "x86", input_scale = 2.000000e-02 : f64}
  // CHECK-NEXT:    %[[C1:.*]] = x86.conv1d(%x1, %[[P1]]) : ({{.*}}, !x86.packed_conv) -> tensor<1x4x4x!quant.uniform<u8:f32, 1.000000e-02:3>>
  // CHECK:         %[[P3:.*]] = x86.conv_prepack({{.*}}) {stride = array<i64: 1, 1, 1>, padding = array<i64: 1, 1, 1>, dilation = array<i64: 1, 1, 1>, groups = 1 : i64, engine = "x86", input_scale = 2.000000e-02 : f64}
  // CHECK-NEXT:    %[[C3:.*]] = x86.conv3d(%x3, %[[P3]]) : ({{.*}}, !x86.packed_conv) -> tensor<1x4x4x4x4x!quant.uniform<u8:f32, 1.000000e-02:3>>
  // CHECK:         %[[P2:.*]] = x86.conv_prepack({{.*}} : (tensor<4x3x1x1x!quant.uniform<i8:f32, 5.000000e-03>>, tensor<4xf32>) -> !x86.packed_conv
  // CHECK-NEXT:    %[[C2:.*]] = x86.conv2d(%x2, %[[P2]])
  // Grouped convs are packed for oneDNN (exact; fbgemm saturates wide depthwise convs even with VNNI).
  // CHECK:         %[[PD:.*]] = x86.conv_prepack({{.*}}) {stride = array<i64: 2, 2>, padding = array<i64: 2, 2>, dilation = array<i64: 2, 2>, groups = 4 : i64, engine = "onednn", input_scale = 1.000000e-02 : f64}
  // CHECK-NEXT:    %[[CD:.*]] = x86.conv2d(%[[C2]], %[[PD]])
  // CHECK-NOT:     ref.
  // CHECK:         func.return %[[C1]], %[[C3]], %[[CD]]
  func.func @ranks(%x1: tensor<1x3x8x!x>, %x3: tensor<1x3x4x4x4x!x>, %x2: tensor<1x3x8x8x!x>) -> (tensor<1x4x4x!y>, tensor<1x4x4x4x4x!y>, tensor<1x4x4x4x!y>) {
    %w1 = aten.param parameter "c1.weight_q" : tensor<4x3x3x!w>
    %b1 = aten.param parameter "c1.bias" : tensor<4xf32>
    %c1 = ref.conv(%x1, %w1, %b1) {stride = array<i64: 2>, padding = array<i64: 0>, dilation = array<i64: 1>, groups = 1 : i64} : (tensor<1x3x8x!x>, tensor<4x3x3x!w>, tensor<4xf32>) -> tensor<1x4x4x!y>
    %w3 = aten.param parameter "c3.weight_q" : tensor<4x3x3x3x3x!w>
    %b3 = aten.param parameter "c3.bias" : tensor<4xf32>
    %c3 = ref.conv(%x3, %w3, %b3) {stride = array<i64: 1, 1, 1>, padding = array<i64: 1, 1, 1>, dilation = array<i64: 1, 1, 1>, groups = 1 : i64} : (tensor<1x3x4x4x4x!x>, tensor<4x3x3x3x3x!w>, tensor<4xf32>) -> tensor<1x4x4x4x4x!y>
    %w2 = aten.param parameter "pw.weight_q" : tensor<4x3x1x1x!wt>
    %b2 = aten.param parameter "pw.bias" : tensor<4xf32>
    %c2 = ref.conv(%x2, %w2, %b2) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x3x8x8x!x>, tensor<4x3x1x1x!wt>, tensor<4xf32>) -> tensor<1x4x8x8x!y>
    %wd = aten.param parameter "dw.weight_q" : tensor<4x1x3x3x!w>
    %bd = aten.param parameter "dw.bias" : tensor<4xf32>
    %cd = ref.conv(%c2, %wd, %bd) {stride = array<i64: 2, 2>, padding = array<i64: 2, 2>, dilation = array<i64: 2, 2>, groups = 4 : i64} : (tensor<1x4x8x8x!y>, tensor<4x1x3x3x!w>, tensor<4xf32>) -> tensor<1x4x4x4x!y>
    func.return %c1, %c3, %cd : tensor<1x4x4x!y>, tensor<1x4x4x4x4x!y>, tensor<1x4x4x4x!y>
  }

  // An i32 bias (scales sx * sw) is read as integers through quant.scast and prepacked as is.
  // CHECK-LABEL: func.func @int32_bias(
  // CHECK:         %[[BQ:.*]] = aten.param parameter "c.bias_q" : tensor<4x!quant.uniform<i32:f32:0, {{.*}}>>
  // CHECK-NEXT:    %[[BI:.*]] = quant.scast %[[BQ]]
  // CHECK-NEXT:    %[[P:.*]] = x86.conv_prepack(%{{.*}}, %[[BI]]) {{.*}} : (tensor<4x3x3x3x!quant.uniform<i8:f32:0, {{.*}}>>, tensor<4xi32>) -> !x86.packed_conv
  // CHECK-NEXT:    x86.conv2d(%x, %[[P]])
  func.func @int32_bias(%x: tensor<1x3x8x8x!x>) -> tensor<1x4x6x6x!y> {
    %w = aten.param parameter "c.weight_q" : tensor<4x3x3x3x!w>
    %bq = aten.param parameter "c.bias_q" : tensor<4x!quant.uniform<i32:f32:0, {2.000000e-05,4.000000e-05,6.000000e-05,8.000000e-05}>>
    %b = quant.scast %bq : tensor<4x!quant.uniform<i32:f32:0, {2.000000e-05,4.000000e-05,6.000000e-05,8.000000e-05}>> to tensor<4xi32>
    %y = ref.conv(%x, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x3x8x8x!x>, tensor<4x3x3x3x!w>, tensor<4xi32>) -> tensor<1x4x6x6x!y>
    func.return %y : tensor<1x4x6x6x!y>
  }
}
