// RUN: qir-opt %s --split-input-file --verify-diagnostics

// The kernels QNNPACK lacks (conv + add, float-output linears) or gets wrong (transposed 3-D
// convs) are not ops of the qnnpack dialect: IR naming one is an error where it is read.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 5.000000e-02>

func.func @conv_add(%x: tensor<1x2x4x4x!x>, %a: tensor<1x2x4x4x!y>, %p: !qnnpack.packed_conv) -> tensor<1x2x4x4x!y> {
  // expected-error @below {{Operation qnnpack.conv2d_add is not registered}}
  %y = qnnpack.conv2d_add(%x, %a, %p) : (tensor<1x2x4x4x!x>, tensor<1x2x4x4x!y>, !qnnpack.packed_conv) -> tensor<1x2x4x4x!y>
  func.return %y : tensor<1x2x4x4x!y>
}

// -----

func.func @linear_fp32(%x: tensor<2x4xf32>, %p: !qnnpack.packed_linear) -> tensor<2x3xf32> {
  // expected-error @below {{Operation qnnpack.linear_fp32 is not registered}}
  %y = qnnpack.linear_fp32(%x, %p) {input_scale = 2.000000e-02 : f64, input_zero_point = 128 : i64} : (tensor<2x4xf32>, !qnnpack.packed_linear) -> tensor<2x3xf32>
  func.return %y : tensor<2x3xf32>
}

// -----

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 5.000000e-02>

func.func @conv_transpose3d(%x: tensor<1x2x2x2x2x!x>, %p: !qnnpack.packed_conv) -> tensor<1x2x4x4x4x!y> {
  // expected-error @below {{Operation qnnpack.conv_transpose3d is not registered}}
  %y = qnnpack.conv_transpose3d(%x, %p) : (tensor<1x2x2x2x2x!x>, !qnnpack.packed_conv) -> tensor<1x2x4x4x4x!y>
  func.return %y : tensor<1x2x4x4x4x!y>
}

// -----

!w = !quant.uniform<i8:f32, 5.000000e-03>

func.func @engine(%w: tensor<2x2x!w>, %b: tensor<2xf32>) -> !qnnpack.packed_linear {
  // expected-error @below {{qnnpack.linear_prepack: unknown engine 'xnnpack' (engines: x86, fbgemm, onednn, qnnpack)}}
  %p = qnnpack.linear_prepack(%w, %b) {engine = "xnnpack"} : (tensor<2x2x!w>, tensor<2xf32>) -> !qnnpack.packed_linear
  func.return %p : !qnnpack.packed_linear
}
