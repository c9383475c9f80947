// RUN: qir-opt %s | filecheck %s
// RUN: qir-opt %s | qir-opt | filecheck %s

// Printed as mlir-opt prints them: storage, optional storage range, expressed
// type, then scale (`%e`) and zero point (omitted when 0).

// CHECK-LABEL: @per_tensor
// CHECK-SAME:    -> !quant.uniform<i8:f32, 5.000000e-02:-3>
func.func private @per_tensor() -> !quant.uniform<i8:f32, 0.05:-3>

// CHECK-LABEL: @zero_point_zero
// CHECK-SAME:    -> !quant.uniform<i8:f32, 5.000000e-02>
func.func private @zero_point_zero() -> !quant.uniform<i8:f32, 5.0e-2:0>

// CHECK-LABEL: @integer_scale
// CHECK-SAME:    -> !quant.uniform<i8:f32, 2.000000e+00:10>
func.func private @integer_scale() -> !quant.uniform<i8:f32, 2:10>

// A scale that `%e` would round is printed with the digits it needs.
// CHECK-LABEL: @lossless_scale
// CHECK-SAME:    -> !quant.uniform<u8:f32, 2.35294117647059e-02:128>
func.func private @lossless_scale() -> !quant.uniform<u8:f32, 0.0235294117647059:128>

// CHECK-LABEL: @one_third
// CHECK-SAME:    -> !quant.uniform<i8:f32, 3.333333333333333e-01>
func.func private @one_third() -> !quant.uniform<i8:f32, 3.3333333333333331e-01>

// CHECK-LABEL: @narrow_range
// CHECK-SAME:    -> !quant.uniform<i8<-127:127>:f32, 1.000000e-01>
func.func private @narrow_range() -> !quant.uniform<i8<-127:127>:f32, 0.1>

// CHECK-LABEL: @reduce_range
// CHECK-SAME:    -> !quant.uniform<u8<0:127>:f32, 1.000000e-01:64>
func.func private @reduce_range() -> !quant.uniform<u8<0:127>:f32, 0.1:64>

// The full range of the storage type is not printed.
// CHECK-LABEL: @full_range
// CHECK-SAME:    -> !quant.uniform<i8:f32, 1.000000e-01>
func.func private @full_range() -> !quant.uniform<i8<-128:127>:f32, 0.1>

// `si8` and `ui8` are accepted for the storage and printed `i8` and `u8`.
// CHECK-LABEL: @builtin_spellings
// CHECK-SAME:    -> (!quant.uniform<i8:f32, 1.000000e-01>, !quant.uniform<u8:f32, 1.000000e-01>)
func.func private @builtin_spellings() -> (!quant.uniform<si8:f32, 0.1>, !quant.uniform<ui8:f32, 0.1>)

// CHECK-LABEL: @storage_widths
// CHECK-SAME:    !quant.uniform<i4:f32, 1.000000e-01>
// CHECK-SAME:    !quant.uniform<u4:f32, 1.000000e-01:8>
// CHECK-SAME:    !quant.uniform<i16:f32, 1.000000e-01>
// CHECK-SAME:    !quant.uniform<u16:f32, 1.000000e-01>
// CHECK-SAME:    !quant.uniform<i32:f32, 1.000000e-01>
func.func private @storage_widths() -> (!quant.uniform<i4:f32, 0.1>, !quant.uniform<u4:f32, 0.1:8>, !quant.uniform<i16:f32, 0.1>, !quant.uniform<u16:f32, 0.1>, !quant.uniform<i32:f32, 0.1>)

// CHECK-LABEL: @expressed_types
// CHECK-SAME:    !quant.uniform<i8:f16, 1.000000e-01>
// CHECK-SAME:    !quant.uniform<i8:bf16, 1.000000e-01>
// CHECK-SAME:    !quant.uniform<i8:f64, 1.000000e-01>
func.func private @expressed_types() -> (!quant.uniform<i8:f16, 0.1>, !quant.uniform<i8:bf16, 0.1>, !quant.uniform<i8:f64, 0.1>)

// Per axis: MLIR separates the scale:zero_point pairs with a bare comma.
// CHECK-LABEL: @per_axis
// CHECK-SAME:    -> !quant.uniform<i8:f32:0, {1.000000e-01,2.000000e-01:1,2.35294117647059e-02:-1}>
func.func private @per_axis() -> !quant.uniform<i8:f32:0, {0.1, 0.2:1, 0.0235294117647059:-1}>

// CHECK-LABEL: @per_axis_narrow_range
// CHECK-SAME:    -> !quant.uniform<i8<-127:127>:f32:1, {1.000000e-01,2.000000e-01}>
func.func private @per_axis_narrow_range() -> !quant.uniform<i8<-127:127>:f32:1, {1.000000e-01,2.000000e-01}>

// CHECK-LABEL: @in_tensors
// CHECK-SAME:    tensor<2x4x!quant.uniform<i8:f32, 5.000000e-02:-3>>
// CHECK-SAME:    tensor<?x3x!quant.uniform<i8:f32:1, {1.000000e-01,2.000000e-01,3.000000e-01}>>
func.func private @in_tensors(tensor<2x4x!quant.uniform<i8:f32, 0.05:-3>>, tensor<?x3x!quant.uniform<i8:f32:1, {0.1,0.2,0.3}>>)
