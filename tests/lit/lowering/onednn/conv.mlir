// RUN: %python %S/../../reference/Inputs/weights.py %s %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p 'lower-onednn{target=x86-avx512-vnni}' | filecheck %s

// ref.conv becomes a prepack (folded when the module is built) and the rank's oneDNN kernel,
// with the post ops that kernel fuses; the others (hardtanh after conv1d, anything after
// conv3d) are a clamp of the storage after it. Quantize and dequantize become the backend's
// own float boundaries. A dynamic batch packs the weight for any shape (no x_shape).

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 5.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @conv2d_relu(
  // CHECK-NEXT:    %[[Q:.*]] = onednn.quantize(%x) : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "c.weight_q"
  // CHECK-NEXT:    %[[B:.*]] = aten.param parameter "c.bias"
  // CHECK-NEXT:    %[[P:.*]] = onednn.qconv_prepack(%[[W]]) {x_scale = 2.000000e-02 : f64, x_zero_point = 128 : i64, stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, x_shape = array<i64: 1, 3, 8, 8>, module = "c"} : (tensor<2x3x3x3x!quant.uniform<i8:f32:0, {{.*}}>>) -> !onednn.packed_conv
  // CHECK-NEXT:    %[[Y:.*]] = onednn.qconv2d_pointwise(%[[Q]], %[[P]], %[[B]]) {post = "relu", module = "c"} : (tensor<1x3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, !onednn.packed_conv, tensor<2xf32>) -> tensor<1x2x8x8x!quant.uniform<u8:f32, 5.000000e-02>>
  // CHECK-NEXT:    %[[D:.*]] = onednn.dequantize(%[[Y]]) : (tensor<1x2x8x8x!quant.uniform<u8:f32, 5.000000e-02>>) -> tensor<1x2x8x8xf32>
  // CHECK-NEXT:    func.return %[[D]]
  func.func @conv2d_relu(%x: tensor<1x3x8x8xf32>) -> tensor<1x2x8x8xf32> {
    %q = quant.qcast %x : tensor<1x3x8x8xf32> to tensor<1x3x8x8x!x>
    %w = aten.param parameter "c.weight_q" : tensor<2x3x3x3x!w>
    %b = aten.param parameter "c.bias" : tensor<2xf32>
    %y = ref.conv(%q, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, post = "relu", module = "c"} : (tensor<1x3x8x8x!x>, tensor<2x3x3x3x!w>, tensor<2xf32>) -> tensor<1x2x8x8x!y>
    %d = quant.dcast %y : tensor<1x2x8x8x!y> to tensor<1x2x8x8xf32>
    func.return %d : tensor<1x2x8x8xf32>
  }

  // conv2d runs hardtanh fused; a float result leaves the kernel in float32 (no dequantize).
  // CHECK-LABEL: func.func @conv2d_hardtanh_float(
  // CHECK:         onednn.qconv2d_pointwise(%{{.*}}) {post = "hardtanh", post_args = array<f64: 0.000000e+00, 6.000000e+00>} : ({{.*}}) -> tensor<?x2x8x8x!quant.uniform<u8:f32, 5.000000e-02>>
  // CHECK-NOT:     x_shape
  // CHECK:         %[[F:.*]] = onednn.qconv2d_pointwise(%{{.*}}) : ({{.*}}) -> tensor<?x2x8x8xf32>
  // CHECK-NOT:     dequantize
  // CHECK:         func.return %{{.*}}, %[[F]]
  func.func @conv2d_hardtanh_float(%x: tensor<?x3x8x8xf32>) -> (tensor<?x2x8x8xf32>, tensor<?x2x8x8xf32>) {
    %q = quant.qcast %x : tensor<?x3x8x8xf32> to tensor<?x3x8x8x!x>
    %w = aten.param parameter "w2" : tensor<2x3x3x3x!w>
    %b = aten.param parameter "b2" : tensor<2xf32>
    %y = ref.conv(%q, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, post = "hardtanh", post_args = array<f64: 0.0, 6.0>} : (tensor<?x3x8x8x!x>, tensor<2x3x3x3x!w>, tensor<2xf32>) -> tensor<?x2x8x8x!y>
    %d = quant.dcast %y : tensor<?x2x8x8x!y> to tensor<?x2x8x8xf32>
    %f = ref.conv(%q, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<?x3x8x8x!x>, tensor<2x3x3x3x!w>, tensor<2xf32>) -> tensor<?x2x8x8xf32>
    func.return %d, %f : tensor<?x2x8x8xf32>, tensor<?x2x8x8xf32>
  }

  // conv1d fuses relu only: its hardtanh is a clamp of the storage, in storage values
  // (0 + round(0 / 0.05), 0 + round(2 / 0.05)).
  // CHECK-LABEL: func.func @conv1d_hardtanh(
  // CHECK:         %[[C:.*]] = onednn.qconv1d_pointwise(%{{.*}}) : ({{.*}}) -> tensor<2x2x16x!quant.uniform<u8:f32, 5.000000e-02>>
  // CHECK-NEXT:    %{{.*}} = onednn.clamp(%[[C]]) {min = 0 : i64, max = 40 : i64}
  func.func @conv1d_hardtanh(%x: tensor<2x3x16xf32>) -> tensor<2x2x16xf32> {
    %q = quant.qcast %x : tensor<2x3x16xf32> to tensor<2x3x16x!x>
    %w = aten.param parameter "w1" : tensor<2x3x3x!w>
    %b = aten.param parameter "b1" : tensor<2xf32>
    %y = ref.conv(%q, %w, %b) {stride = array<i64: 1>, padding = array<i64: 1>, dilation = array<i64: 1>, groups = 1 : i64, post = "hardtanh", post_args = array<f64: 0.0, 2.0>} : (tensor<2x3x16x!x>, tensor<2x3x3x!w>, tensor<2xf32>) -> tensor<2x2x16x!y>
    %d = quant.dcast %y : tensor<2x2x16x!y> to tensor<2x2x16xf32>
    func.return %d : tensor<2x2x16xf32>
  }

  // conv3d fuses nothing: relu is a clamp at the zero point.
  // CHECK-LABEL: func.func @conv3d_relu(
  // CHECK:         %[[C:.*]] = onednn.qconv3d_pointwise(%{{.*}}) : ({{.*}}) -> tensor<1x2x4x4x4x!quant.uniform<u8:f32, 5.000000e-02:10>>
  // CHECK-NEXT:    %{{.*}} = onednn.clamp(%[[C]]) {min = 10 : i64, max = 255 : i64}
  func.func @conv3d_relu(%x: tensor<1x3x4x4x4xf32>) -> tensor<1x2x4x4x4xf32> {
    %q = quant.qcast %x : tensor<1x3x4x4x4xf32> to tensor<1x3x4x4x4x!x>
    %w = aten.param parameter "w3" : tensor<2x3x1x1x1x!w>
    %b = aten.param parameter "b3" : tensor<2xf32>
    %y = ref.conv(%q, %w, %b) {stride = array<i64: 1, 1, 1>, padding = array<i64: 0, 0, 0>, dilation = array<i64: 1, 1, 1>, groups = 1 : i64, post = "relu"} : (tensor<1x3x4x4x4x!x>, tensor<2x3x1x1x1x!w>, tensor<2xf32>) -> tensor<1x2x4x4x4x!quant.uniform<u8:f32, 5.000000e-02:10>>
    %d = quant.dcast %y : tensor<1x2x4x4x4x!quant.uniform<u8:f32, 5.000000e-02:10>> to tensor<1x2x4x4x4xf32>
    func.return %d : tensor<1x2x4x4x4xf32>
  }
}
