// RUN: %python %S/Inputs/weights.py %s %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p reference-rewrite | filecheck %s

// conv / linear: dequantized activation and weight, a float, int32 or no bias, an optional
// relu-like tail and a quantize become one ref op; without the quantize the result is float.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 1.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03,3.000000e-03,4.000000e-03}>

builtin.module attributes {qir.stage = "quantized"} {
  // CHECK-LABEL: func.func @conv_relu(
  // CHECK-NEXT:    %[[X:.*]] = quant.qcast %x
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "c.weight_q"
  // CHECK-NEXT:    %[[B:.*]] = aten.param parameter "c.bias"
  // CHECK-NEXT:    %[[Y:.*]] = ref.conv(%[[X]], %[[W]], %[[B]]) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, post = "relu", module = "c", module_type = "torch.nn.modules.conv.Conv2d"} : (tensor<1x3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, tensor<4x3x3x3x!quant.uniform<i8:f32:0, {{.*}}>>, tensor<4xf32>) -> tensor<1x4x8x8x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[Y]]
  // CHECK-NEXT:    func.return %[[D]]
  func.func @conv_relu(%x: tensor<1x3x8x8xf32>) -> tensor<1x4x8x8xf32> {
    %x_q = quant.qcast %x : tensor<1x3x8x8xf32> to tensor<1x3x8x8x!x>
    %x_dq = quant.dcast %x_q : tensor<1x3x8x8x!x> to tensor<1x3x8x8xf32>
    %w = aten.param parameter "c.weight_q" : tensor<4x3x3x3x!w>
    %w_dq = quant.dcast %w : tensor<4x3x3x3x!w> to tensor<4x3x3x3xf32>
    %b = aten.param parameter "c.bias" : tensor<4xf32>
    %c = aten.op "conv2d.default"(%x_dq, %w_dq, %b, [1, 1], [1, 1]) {module = "c", module_type = "torch.nn.modules.conv.Conv2d"} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
    %r = aten.op "relu.default"(%c) : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    %r_q = quant.qcast %r : tensor<1x4x8x8xf32> to tensor<1x4x8x8x!y>
    %r_dq = quant.dcast %r_q : tensor<1x4x8x8x!y> to tensor<1x4x8x8xf32>
    func.return %r_dq : tensor<1x4x8x8xf32>
  }

  // relu6, hardtanh and clamp with two constant bounds are hardtanh post ops; no bias makes
  // an inline zero one; a depthwise conv keeps its groups.
  // CHECK-LABEL: func.func @hardtanh_tails(
  // CHECK-NEXT:    %[[Z:.*]] = aten.param constant "zero_bias_4" = dense<0.000000e+00> : tensor<4xf32>
  // CHECK:         %[[A:.*]] = ref.conv(%{{.*}}, %{{.*}}, %[[Z]]) {stride = {{.*}}, groups = 4 : i64, post = "hardtanh", post_args = array<f64: 0.000000e+00, 6.000000e+00>}
  // CHECK:         %[[B:.*]] = ref.conv(%[[A]], %{{.*}}, %[[Z]]) {stride = {{.*}}, post = "hardtanh", post_args = array<f64: -5.000000e-01, 2.000000e+00>}
  // CHECK-NEXT:    %[[C:.*]] = ref.conv(%[[B]], %{{.*}}, %[[Z]]) {stride = {{.*}}, post = "hardtanh", post_args = array<f64: 0.000000e+00, 3.000000e+00>}
  // CHECK-NEXT:    ref.conv(%[[C]], %{{.*}}, %[[Z]]) {stride = {{.*}}, post = "relu"}
  // CHECK-NOT:     aten.op
  func.func @hardtanh_tails(%x: tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32> {
    %x_q = quant.qcast %x : tensor<1x4x8x8xf32> to tensor<1x4x8x8x!x>
    %x_dq = quant.dcast %x_q : tensor<1x4x8x8x!x> to tensor<1x4x8x8xf32>
    %w = aten.param parameter "dw.weight_q" : tensor<4x1x3x3x!w>
    %w_dq = quant.dcast %w : tensor<4x1x3x3x!w> to tensor<4x1x3x3xf32>
    %c = aten.op "conv2d.default"(%x_dq, %w_dq, none, [1, 1], [1, 1], [1, 1], 4) : (tensor<1x4x8x8xf32>, tensor<4x1x3x3xf32>) -> tensor<1x4x8x8xf32>
    %r = aten.op "relu6.default"(%c) : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    %r_q = quant.qcast %r : tensor<1x4x8x8xf32> to tensor<1x4x8x8x!y>
    %r_dq = quant.dcast %r_q : tensor<1x4x8x8x!y> to tensor<1x4x8x8xf32>
    %w2 = aten.param parameter "pw.weight_q" : tensor<4x4x1x1x!w>
    %w2_dq = quant.dcast %w2 : tensor<4x4x1x1x!w> to tensor<4x4x1x1xf32>
    %c2 = aten.op "conv2d.default"(%r_dq, %w2_dq) : (tensor<1x4x8x8xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x8x8xf32>
    %h = aten.op "hardtanh_.default"(%c2, -0.5, 2.0) : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    %h_q = quant.qcast %h : tensor<1x4x8x8xf32> to tensor<1x4x8x8x!y>
    %h_dq = quant.dcast %h_q : tensor<1x4x8x8x!y> to tensor<1x4x8x8xf32>
    %c3 = aten.op "conv2d.default"(%h_dq, %w2_dq) : (tensor<1x4x8x8xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x8x8xf32>
    %k = aten.op "clamp.default"(%c3, 0, 3) : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    %k_q = quant.qcast %k : tensor<1x4x8x8xf32> to tensor<1x4x8x8x!y>
    %k_dq = quant.dcast %k_q : tensor<1x4x8x8x!y> to tensor<1x4x8x8xf32>
    %c4 = aten.op "conv2d.default"(%k_dq, %w2_dq) : (tensor<1x4x8x8xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x8x8xf32>
    %m = aten.op "clamp.default"(%c4, 0) : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    %m_q = quant.qcast %m : tensor<1x4x8x8xf32> to tensor<1x4x8x8x!y>
    %m_dq = quant.dcast %m_q : tensor<1x4x8x8x!y> to tensor<1x4x8x8xf32>
    func.return %m_dq : tensor<1x4x8x8xf32>
  }

  // Read in float (no quantize after it), a conv leaves the integer domain directly; the relu stays.
  // A transposed conv (weight quantized along axis 1) and `convolution.default` are convs too.
  // CHECK-LABEL: func.func @float_result(
  // CHECK:         %[[T:.*]] = ref.conv({{.*}}) {stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, transposed = true, output_padding = array<i64: 1, 1>} : ({{.*}}) -> tensor<1x4x16x16x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK:         %[[F:.*]] = ref.conv(%[[T]], {{.*}}) -> tensor<1x4x16x16xf32>
  // CHECK-NEXT:    %[[R:.*]] = aten.op "relu.default"(%[[F]])
  // CHECK-NEXT:    func.return %[[R]]
  func.func @float_result(%x: tensor<1x3x8x8xf32>) -> tensor<1x4x16x16xf32> {
    %x_q = quant.qcast %x : tensor<1x3x8x8xf32> to tensor<1x3x8x8x!x>
    %x_dq = quant.dcast %x_q : tensor<1x3x8x8x!x> to tensor<1x3x8x8xf32>
    %wt = aten.param parameter "up.weight_q" : tensor<3x4x3x3x!quant.uniform<i8:f32:1, {1.000000e-03,2.000000e-03,3.000000e-03,4.000000e-03}>>
    %wt_dq = quant.dcast %wt : tensor<3x4x3x3x!quant.uniform<i8:f32:1, {1.000000e-03,2.000000e-03,3.000000e-03,4.000000e-03}>> to tensor<3x4x3x3xf32>
    %bt = aten.param parameter "up.bias" : tensor<4xf32>
    %t = aten.op "conv_transpose2d.input"(%x_dq, %wt_dq, %bt, [2, 2], [1, 1], [1, 1]) : (tensor<1x3x8x8xf32>, tensor<3x4x3x3xf32>, tensor<4xf32>) -> tensor<1x4x16x16xf32>
    %t_q = quant.qcast %t : tensor<1x4x16x16xf32> to tensor<1x4x16x16x!y>
    %t_dq = quant.dcast %t_q : tensor<1x4x16x16x!y> to tensor<1x4x16x16xf32>
    %w = aten.param parameter "head.weight_q" : tensor<4x4x1x1x!w>
    %w_dq = quant.dcast %w : tensor<4x4x1x1x!w> to tensor<4x4x1x1xf32>
    %c = aten.op "convolution.default"(%t_dq, %w_dq, none, [1, 1], [0, 0], [1, 1], false, [0, 0], 1) : (tensor<1x4x16x16xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x16x16xf32>
    %r = aten.op "relu.default"(%c) : (tensor<1x4x16x16xf32>) -> tensor<1x4x16x16xf32>
    func.return %r : tensor<1x4x16x16xf32>
  }

  // An int32 bias whose scales are sx * sw is read as plain integers through quant.scast;
  // one with other scales is a float bias (its dequantized value).
  // CHECK-LABEL: func.func @int32_bias(
  // CHECK:         %[[BQ:.*]] = aten.param parameter "l.bias_q" : tensor<4x!quant.uniform<i32:f32:0, {{.*}}>>
  // CHECK:         %[[BI:.*]] = quant.scast %[[BQ]] : tensor<4x!quant.uniform<i32:f32:0, {{.*}}>> to tensor<4xi32>
  // CHECK-NEXT:    ref.linear(%{{.*}}, %{{.*}}, %[[BI]]) : ({{.*}}, tensor<4xi32>) -> tensor<2x4x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK:         %[[OD:.*]] = quant.dcast %{{.*}} : tensor<4x!quant.uniform<i32:f32, 1.000000e-05>> to tensor<4xf32>
  // CHECK-NEXT:    ref.linear(%{{.*}}, %{{.*}}, %[[OD]]) : ({{.*}}, tensor<4xf32>) -> tensor<2x4xf32>
  func.func @int32_bias(%x: tensor<2x8xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
    %x_q = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!x>
    %x_dq = quant.dcast %x_q : tensor<2x8x!x> to tensor<2x8xf32>
    %w = aten.param parameter "l.weight_q" : tensor<4x8x!w>
    %w_dq = quant.dcast %w : tensor<4x8x!w> to tensor<4x8xf32>
    %b = aten.param parameter "l.bias_q" : tensor<4x!quant.uniform<i32:f32:0, {2.000000e-05,4.000000e-05,6.000000e-05,8.000000e-05}>>
    %b_dq = quant.dcast %b : tensor<4x!quant.uniform<i32:f32:0, {2.000000e-05,4.000000e-05,6.000000e-05,8.000000e-05}>> to tensor<4xf32>
    %l = aten.op "linear.default"(%x_dq, %w_dq, %b_dq) : (tensor<2x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<2x4xf32>
    %l_q = quant.qcast %l : tensor<2x4xf32> to tensor<2x4x!y>
    %l_dq = quant.dcast %l_q : tensor<2x4x!y> to tensor<2x4xf32>
    %o = aten.param parameter "other.bias_q" : tensor<4x!quant.uniform<i32:f32, 1.000000e-05>>
    %o_dq = quant.dcast %o : tensor<4x!quant.uniform<i32:f32, 1.000000e-05>> to tensor<4xf32>
    %l2 = aten.op "linear.default"(%x_dq, %w_dq, %o_dq) : (tensor<2x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<2x4xf32>
    func.return %l_dq, %l2 : tensor<2x4xf32>, tensor<2x4xf32>
  }

  // An unbatched convolution (C x H x W) is not rewritten: ref.conv's operands are batched, and
  // canonicalize gives such a conv a batch of one before the pipeline gets here.
  // CHECK-LABEL: func.func @unbatched(
  // CHECK:         aten.op "conv2d.default"
  // CHECK-NOT:     ref.conv
  func.func @unbatched(%x: tensor<3x8x8xf32>) -> tensor<4x8x8xf32> {
    %x_q = quant.qcast %x : tensor<3x8x8xf32> to tensor<3x8x8x!x>
    %x_dq = quant.dcast %x_q : tensor<3x8x8x!x> to tensor<3x8x8xf32>
    %w = aten.param parameter "c.weight_q" : tensor<4x3x3x3x!w>
    %w_dq = quant.dcast %w : tensor<4x3x3x3x!w> to tensor<4x3x3x3xf32>
    %c = aten.op "conv2d.default"(%x_dq, %w_dq, none, [1, 1], [1, 1]) : (tensor<3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<4x8x8xf32>
    func.return %c : tensor<4x8x8xf32>
  }
}
