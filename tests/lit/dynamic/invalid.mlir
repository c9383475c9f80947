// RUN: qir-opt %s --split-input-file --verify-diagnostics

!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

func.func @static_input(%x: tensor<2x8x!quant.uniform<u8:f32, 0.1>>, %s: tensor<f32>, %z: tensor<i64>, %w: tensor<2x8x!w>, %b: tensor<2xf32>) {
  // expected-error@+1 {{ref.dynamic_linear: the input must be a tensor of !quant.any (run-time parameters), got tensor<2x8x!quant.uniform<u8:f32, 1.000000e-01>>}}
  %y = ref.dynamic_linear(%x, %s, %z, %w, %b) : (tensor<2x8x!quant.uniform<u8:f32, 0.1>>, tensor<f32>, tensor<i64>, tensor<2x8x!w>, tensor<2xf32>) -> tensor<2x2xf32>
  func.return
}

// -----

!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

func.func @integer_bias(%x: tensor<2x8x!quant.any<u8:f32>>, %s: tensor<f32>, %z: tensor<i64>, %w: tensor<2x8x!w>, %b: tensor<2xi32>) {
  // expected-error@+1 {{ref.dynamic_linear: the bias must be float, got tensor<2xi32>}}
  %y = ref.dynamic_linear(%x, %s, %z, %w, %b) : (tensor<2x8x!quant.any<u8:f32>>, tensor<f32>, tensor<i64>, tensor<2x8x!w>, tensor<2xi32>) -> tensor<2x2xf32>
  func.return
}

// -----

!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

func.func @quantized_result(%x: tensor<2x8x!quant.any<u8:f32>>, %s: tensor<f32>, %z: tensor<i64>, %w: tensor<2x8x!w>, %b: tensor<2xf32>) {
  // expected-error@+1 {{ref.dynamic_linear: the result must be float, got tensor<2x2x!quant.uniform<u8:f32, 1.000000e-01>>}}
  %y = ref.dynamic_linear(%x, %s, %z, %w, %b) : (tensor<2x8x!quant.any<u8:f32>>, tensor<f32>, tensor<i64>, tensor<2x8x!w>, tensor<2xf32>) -> tensor<2x2x!quant.uniform<u8:f32, 0.1>>
  func.return
}

// -----

!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

func.func @row_parameters(%x: tensor<2x8x!quant.any<i8:f32>>, %s: tensor<8x1xf32>, %z: tensor<8x1xi64>, %w: tensor<2x8x!w>, %b: tensor<2xf32>) {
  // expected-error@+1 {{ref.dynamic_linear: parameters of shape [8, 1] are neither per tensor (rank 0) nor per token (the input's shape with a last dimension of 1, [2, 1])}}
  %y = ref.dynamic_linear(%x, %s, %z, %w, %b) : (tensor<2x8x!quant.any<i8:f32>>, tensor<8x1xf32>, tensor<8x1xi64>, tensor<2x8x!w>, tensor<2xf32>) -> tensor<2x2xf32>
  func.return
}

// -----

!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

func.func @shapes(%x: tensor<2x8x!quant.any<u8:f32>>, %s: tensor<f32>, %z: tensor<i64>, %w: tensor<2x8x!w>, %b: tensor<2xf32>) {
  // expected-error@+1 {{ref.dynamic_linear: a tensor<2x8x!quant.any<u8:f32>> by a tensor<2x8x!quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>> weight does not give tensor<2x3xf32>}}
  %y = ref.dynamic_linear(%x, %s, %z, %w, %b) : (tensor<2x8x!quant.any<u8:f32>>, tensor<f32>, tensor<i64>, tensor<2x8x!w>, tensor<2xf32>) -> tensor<2x3xf32>
  func.return
}

// -----

// expected-error@+1 {{a dynamic spec is per tensor or per token, not per channel}}
func.func private @per_channel_dynamic() attributes {spec = #obs.spec<u8[0:255], affine, per_channel_minmax, axis 0, dynamic>}
