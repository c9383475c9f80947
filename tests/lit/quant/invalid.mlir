// RUN: qir-opt %s --split-input-file --verify-diagnostics

// expected-error@+1 {{scale must be positive and finite, got -0.1}}
func.func private @negative_scale() -> !quant.uniform<i8:f32, -0.1>

// -----

// expected-error@+1 {{scale must be positive and finite, got 0.0}}
func.func private @zero_scale() -> !quant.uniform<i8:f32, 0.0:1>

// -----

// expected-error@+1 {{scale 100000.0 is outside the range [5.960464477539063e-08, 65504.0] of expressed type f16}}
func.func private @scale_beyond_f16() -> !quant.uniform<i8:f16, 1.0e5>

// -----

// expected-error@+1 {{zero point 128 is outside the storage range [-128, 127]}}
func.func private @zero_point_beyond_storage() -> !quant.uniform<i8:f32, 0.1:128>

// -----

// expected-error@+1 {{zero point -1 is outside the storage range [0, 255]}}
func.func private @negative_unsigned_zero_point() -> !quant.uniform<u8:f32, 0.1:-1>

// -----

// expected-error@+1 {{zero point -128 is outside the storage range [-127, 127]}}
func.func private @zero_point_beyond_narrow_range() -> !quant.uniform<i8<-127:127>:f32, 0.1:-128>

// -----

// expected-error@+1 {{storage range [0, 256] is outside [0, 255], the range of u8}}
func.func private @storage_range_beyond_type() -> !quant.uniform<u8<0:256>:f32, 0.1>

// -----

// expected-error@+1 {{storage min 5 must be less than storage max 5}}
func.func private @empty_storage_range() -> !quant.uniform<i8<5:5>:f32, 0.1:5>

// -----

// expected-error@+1 {{storage type width must be between 1 and 32, got 64}}
func.func private @storage_too_wide() -> !quant.uniform<i64:f32, 0.1>

// -----

// expected-error@+1 {{expected a storage type such as i8 or u8, got 'f8'}}
func.func private @float_storage() -> !quant.uniform<f8:f32, 0.1>

// -----

// expected-error@+1 {{expressed type must be f16, bf16, f32 or f64, got i32}}
func.func private @integer_expressed() -> !quant.uniform<i8:i32, 0.1>

// -----

// expected-error@+1 {{per-axis type needs at least one scale}}
func.func private @per_axis_no_scales() -> !quant.uniform<i8:f32:0, {}>

// -----

// expected-error@+1 {{scale must be positive and finite, got -0.2}}
func.func private @per_axis_negative_scale() -> !quant.uniform<i8:f32:0, {0.1,-0.2}>

// -----

func.func @qcast_shape(%x: tensor<2x4xf32>) {
  // expected-error@+1 {{operand type tensor<2x4xf32> and result type tensor<4x2x!quant.uniform<i8:f32, 5.000000e-02>> must have the same shape}}
  %q = quant.qcast %x : tensor<2x4xf32> to tensor<4x2x!quant.uniform<i8:f32, 0.05>>
  func.return
}

// -----

func.func @qcast_tensor_to_scalar(%x: tensor<2x4xf32>) {
  // expected-error@+1 {{must have the same shape}}
  %q = quant.qcast %x : tensor<2x4xf32> to !quant.uniform<i8:f32, 0.05>
  func.return
}

// -----

func.func @qcast_expressed(%x: tensor<4xf16>) {
  // expected-error@+1 {{operand element type f16 is not the expressed type f32 of !quant.uniform<i8:f32, 5.000000e-02>}}
  %q = quant.qcast %x : tensor<4xf16> to tensor<4x!quant.uniform<i8:f32, 0.05>>
  func.return
}

// -----

func.func @dcast_expressed(%q: tensor<4x!quant.uniform<i8:f32, 0.05>>) {
  // expected-error@+1 {{result element type bf16 is not the expressed type f32 of !quant.uniform<i8:f32, 5.000000e-02>}}
  %x = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 0.05>> to tensor<4xbf16>
  func.return
}

// -----

func.func @dcast_to_integer(%q: tensor<4x!quant.uniform<i8:f32, 0.05>>) {
  // expected-error@+1 {{expected a float type (f16, bf16, f32, f64) or a tensor of it, got tensor<4xi8>}}
  %x = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 0.05>> to tensor<4xi8>
  func.return
}

// -----

func.func @per_axis_rank(%w: tensor<2x4xf32>) {
  // expected-error@+1 {{quantized dimension 3 out of range for tensor of rank 2}}
  %q = quant.qcast %w : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i8:f32:3, {0.1}>>
  func.return
}

// -----

func.func @per_axis_size(%w: tensor<2x4xf32>) {
  // expected-error@+1 {{per-axis type has 3 scales but dimension 1 has size 4}}
  %q = quant.qcast %w : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i8:f32:1, {0.1,0.2,0.3}>>
  func.return
}

// -----

func.func @per_axis_scalar(%x: f32) {
  // expected-error@+1 {{scalar types may not use per-axis quantization}}
  %q = quant.qcast %x : f32 to !quant.uniform<i8:f32:0, {0.1}>
  func.return
}

// -----

func.func @per_axis_dcast(%q: tensor<2x4x!quant.uniform<i8:f32:0, {0.1,0.2,0.3}>>) {
  // expected-error@+1 {{per-axis type has 3 scales but dimension 0 has size 2}}
  %x = quant.dcast %q : tensor<2x4x!quant.uniform<i8:f32:0, {0.1,0.2,0.3}>> to tensor<2x4xf32>
  func.return
}

// -----

func.func @scast_width(%q: tensor<4x!quant.uniform<i8:f32, 0.05>>) {
  // expected-error@+1 {{integer type i16 does not match the storage of !quant.uniform<i8:f32, 5.000000e-02>: expected i8 or si8}}
  %i = quant.scast %q : tensor<4x!quant.uniform<i8:f32, 0.05>> to tensor<4xi16>
  func.return
}

// -----

func.func @scast_signedness(%i: tensor<4xui8>) {
  // expected-error@+1 {{integer type ui8 does not match the storage of !quant.uniform<i8:f32, 5.000000e-02>: expected i8 or si8}}
  %q = quant.scast %i : tensor<4xui8> to tensor<4x!quant.uniform<i8:f32, 0.05>>
  func.return
}

// -----

func.func @scast_integers(%i: tensor<4xi8>) {
  // expected-error@+1 {{scast converts between a quantized type and an integer type, got i8 to i8}}
  %j = quant.scast %i : tensor<4xi8> to tensor<4xi8>
  func.return
}

// -----

func.func @scast_per_axis(%q: tensor<4x!quant.uniform<i8:f32:0, {0.1,0.2}>>) {
  // expected-error@+1 {{per-axis type has 2 scales but dimension 0 has size 4}}
  %i = quant.scast %q : tensor<4x!quant.uniform<i8:f32:0, {0.1,0.2}>> to tensor<4xi8>
  func.return
}

// -----

func.func @choose_qparams_width(%x: tensor<4xf32>) {
  // expected-error@+1 {{run-time parameters are chosen for u8, i8, u16, i16 or i32 storage, not !quant.any<i4:f32>}}
  %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<i4:f32>} : tensor<4xf32> -> (tensor<f32>, tensor<i64>)
  func.return
}

// -----

func.func @choose_qparams_scale_type(%x: tensor<4xf32>) {
  // expected-error@+1 {{quant.choose_qparams: the scale must be a tensor of f32, got tensor<f64>}}
  %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<i8:f32>} : tensor<4xf32> -> (tensor<f64>, tensor<i64>)
  func.return
}

// -----

func.func @choose_qparams_shape(%x: tensor<2x4xf32>) {
  // expected-error@+1 {{parameters of shape [4, 1] are neither per tensor (rank 0) nor per token (the input's shape with a last dimension of 1, [2, 1])}}
  %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<i8:f32>} : tensor<2x4xf32> -> (tensor<4x1xf32>, tensor<4x1xi64>)
  func.return
}

// -----

func.func @choose_qparams_per_token_u8(%x: tensor<2x4xf32>) {
  // expected-error@+1 {{per-token parameters are chosen for i8 storage (full range, or [-127:127] when symmetric), not !quant.any<u8:f32>}}
  %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<u8:f32>} : tensor<2x4xf32> -> (tensor<2x1xf32>, tensor<2x1xi64>)
  func.return
}

// -----

func.func @choose_qparams_symmetric_narrow_u8(%x: tensor<4xf32>) {
  // expected-error@+1 {{symmetric parameters for unsigned storage take the full u8 range (zero point 128), not !quant.any<u8<0:127>:f32>}}
  %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<u8<0:127>:f32>, symmetric} : tensor<4xf32> -> (tensor<f32>, tensor<i64>)
  func.return
}

// -----

func.func @qcast_any(%x: tensor<4xf32>) {
  // expected-error@+1 {{quant.qcast needs a type with its parameters, got !quant.any<u8:f32>: values whose parameters are chosen at run time use quant.dynamic_qcast / quant.dynamic_dcast}}
  %q = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.any<u8:f32>>
  func.return
}

// -----

func.func @dynamic_qcast_uniform(%x: tensor<4xf32>, %s: tensor<f32>, %z: tensor<i64>) {
  // expected-error@+1 {{quant.dynamic_qcast takes its parameters as operands: the quantized type is a !quant.any, got !quant.uniform<u8:f32, 1.000000e-01>}}
  %q = quant.dynamic_qcast %x, %s, %z : (tensor<4xf32>, tensor<f32>, tensor<i64>) -> tensor<4x!quant.uniform<u8:f32, 0.1>>
  func.return
}

// -----

func.func @dynamic_dcast_zero_point(%q: tensor<2x4x!quant.any<i8:f32>>, %s: tensor<2x1xf32>, %z: tensor<i64>) {
  // expected-error@+1 {{quant.dynamic_dcast: the scale tensor<2x1xf32> and the zero point tensor<i64> differ in shape}}
  %y = quant.dynamic_dcast %q, %s, %z : (tensor<2x4x!quant.any<i8:f32>>, tensor<2x1xf32>, tensor<i64>) -> tensor<2x4xf32>
  func.return
}

// -----

// expected-error@+1 {{storage range [0, 300] is outside [0, 255], the range of u8}}
func.func private @any_range() -> !quant.any<u8<0:300>:f32>
