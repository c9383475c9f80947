// RUN: %python %S/../../reference/Inputs/weights.py %s %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors --split-input-file --verify-diagnostics

// The onednn ops verify what torch 2.13's oneDNN kernels actually run, so IR that the
// kernels would refuse at run time is an error naming the op when it is read.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 5.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module {
  func.func @forward(%x: tensor<1x3x4x4x4x!x>, %w: tensor<2x3x1x1x1x!w>, %b: tensor<2xf32>) -> tensor<1x2x4x4x4x!y> {
    %p = onednn.qconv_prepack(%w) {x_scale = 2.000000e-02 : f64, x_zero_point = 128 : i64, stride = array<i64: 1, 1, 1>, padding = array<i64: 0, 0, 0>, dilation = array<i64: 1, 1, 1>, groups = 1 : i64} : (tensor<2x3x1x1x1x!w>) -> !onednn.packed_conv
    // expected-error @below {{onednn.qconv3d_pointwise: conv3d has no fused 'relu' post op in oneDNN (post ops: none)}}
    %y = onednn.qconv3d_pointwise(%x, %p, %b) {post = "relu"} : (tensor<1x3x4x4x4x!x>, !onednn.packed_conv, tensor<2xf32>) -> tensor<1x2x4x4x4x!y>
    func.return %y : tensor<1x2x4x4x4x!y>
  }
}

// -----

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 5.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module {
  func.func @forward(%w: tensor<2x3x!quant.uniform<i8:f32:0, {1.000000e-03:1,2.000000e-03}>>) -> !onednn.packed_linear {
    // expected-error @below {{onednn.qlinear_prepack: oneDNN takes symmetric weights (zero points 0)}}
    %p = onednn.qlinear_prepack(%w) : (tensor<2x3x!quant.uniform<i8:f32:0, {1.000000e-03:1,2.000000e-03}>>) -> !onednn.packed_linear
    func.return %p : !onednn.packed_linear
  }
}

// -----

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 5.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module {
  func.func @forward(%x: tensor<2x3x!x>, %p: !onednn.packed_linear, %b: tensor<2xf32>) -> tensor<2x2x!y> {
    // expected-error @below {{onednn.qlinear_pointwise: linear has no fused 'sigmoid' post op in oneDNN}}
    %y = onednn.qlinear_pointwise(%x, %p, %b) {post = "sigmoid"} : (tensor<2x3x!x>, !onednn.packed_linear, tensor<2xf32>) -> tensor<2x2x!y>
    func.return %y : tensor<2x2x!y>
  }
}

// -----

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 5.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module {
  func.func @forward(%x: tensor<2x3x!x>, %p: !onednn.packed_linear, %b: tensor<2xf32>, %o: tensor<2x2x!y>) -> tensor<2x2xf32> {
    // expected-error @below {{onednn.qlinear_pointwise_binary: `add` takes a float32 `other`}}
    %y = onednn.qlinear_pointwise_binary(%x, %p, %b, %o) {binary = "add"} : (tensor<2x3x!x>, !onednn.packed_linear, tensor<2xf32>, tensor<2x2x!y>) -> tensor<2x2xf32>
    func.return %y : tensor<2x2xf32>
  }
}

// -----

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 5.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module {
  func.func @forward(%x: tensor<1x3x4x4x!x>, %w: tensor<2x3x1x1x!w>, %b: tensor<2xf32>, %a: tensor<1x2x4x4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<1x2x4x4x!y> {
    %p = onednn.qconv_prepack(%w) {x_scale = 2.000000e-02 : f64, x_zero_point = 128 : i64, stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<2x3x1x1x!w>) -> !onednn.packed_conv
    // expected-error @below {{must have the result's shape and storage}}
    %y = onednn.qconv2d_pointwise_sum(%x, %p, %b, %a) : (tensor<1x3x4x4x!x>, !onednn.packed_conv, tensor<2xf32>, tensor<1x2x4x4x!quant.uniform<i8:f32, 1.000000e-01>>) -> tensor<1x2x4x4x!y>
    func.return %y : tensor<1x2x4x4x!y>
  }
}

// -----

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 5.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module {
  func.func @forward(%x: tensor<1x3x4x4x!quant.uniform<u8:f32, 1.000000e-01:3>>, %w: tensor<2x3x1x1x!w>, %b: tensor<2xf32>) -> tensor<1x2x4x4x!y> {
    %p = onednn.qconv_prepack(%w) {x_scale = 2.000000e-02 : f64, x_zero_point = 128 : i64, stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<2x3x1x1x!w>) -> !onednn.packed_conv
    // expected-error @below {{onednn.qconv2d_pointwise: the weight was packed for input parameters (0.02, 128), the input has (0.1, 3)}}
    %y = onednn.qconv2d_pointwise(%x, %p, %b) : (tensor<1x3x4x4x!quant.uniform<u8:f32, 1.000000e-01:3>>, !onednn.packed_conv, tensor<2xf32>) -> tensor<1x2x4x4x!y>
    func.return %y : tensor<1x2x4x4x!y>
  }
}

// -----

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 5.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module {
  func.func @forward(%x: tensor<1x3x4x4x!quant.uniform<i8:f32, 2.000000e-02>>, %p: !onednn.packed_conv, %b: tensor<2xf32>) -> tensor<1x2x4x4x!y> {
    // expected-error @below {{onednn.qconv2d_pointwise: oneDNN's quantized conv takes u8 per-tensor inputs}}
    %y = onednn.qconv2d_pointwise(%x, %p, %b) : (tensor<1x3x4x4x!quant.uniform<i8:f32, 2.000000e-02>>, !onednn.packed_conv, tensor<2xf32>) -> tensor<1x2x4x4x!y>
    func.return %y : tensor<1x2x4x4x!y>
  }
}
