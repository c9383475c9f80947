// RUN: qir-opt %s --split-input-file --verify-diagnostics

// ref ops that do not verify, each reported at its own line.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03,3.000000e-03,4.000000e-03}>

builtin.module attributes {qir.stage = "reference"} {
  func.func @unbatched_conv(%x: tensor<3x8x8x!x>, %w: tensor<4x3x3x3x!w>, %b: tensor<4xf32>) -> tensor<4x8x8xf32> {
    // expected-error@+1 {{ref.conv: the input tensor<3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>> must be batched, with the weight's rank (4: N, C and 2 spatial dims)}}
    %y = ref.conv(%x, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<3x8x8x!x>, tensor<4x3x3x3x!w>, tensor<4xf32>) -> tensor<4x8x8xf32>
    func.return %y : tensor<4x8x8xf32>
  }
}

// -----

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03,3.000000e-03,4.000000e-03}>

builtin.module attributes {qir.stage = "reference"} {
  func.func @unbatched_conv_add(%x: tensor<4x8x8x!x>, %w: tensor<4x4x3x3x!w>, %b: tensor<4xf32>, %a: tensor<4x8x8x!x>) -> tensor<4x8x8x!x> {
    // expected-error@+1 {{ref.conv_add: the input tensor<4x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>> must be batched}}
    %y = ref.conv_add(%x, %w, %b, %a) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<4x8x8x!x>, tensor<4x4x3x3x!w>, tensor<4xf32>, tensor<4x8x8x!x>) -> tensor<4x8x8x!x>
    func.return %y : tensor<4x8x8x!x>
  }
}
