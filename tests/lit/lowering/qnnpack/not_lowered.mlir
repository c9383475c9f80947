// RUN: %python %S/../../reference/Inputs/weights.py %s %t.safetensors
// RUN: not qir-opt %s --weights %t.safetensors -p lower-qnnpack 2>&1 | filecheck %s

// A ref op the table refuses, written by hand at the reference stage (reference-rewrite with
// backend=qnnpack never makes one), is an error of lower-qnnpack naming the op and its place.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 4.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

// CHECK: not_lowered.mlir:[[# @LINE + 5]]:5: error: pass 'lower-qnnpack' failed: 'qnnpack' cannot run this op: its capability table refuses it {{.*}}(at ref.conv_add)
builtin.module attributes {qir.stage = "reference"} {
  func.func @conv_add(%x: tensor<1x2x6x6x!x>, %a: tensor<1x2x6x6x!x>) -> tensor<1x2x6x6x!y> {
    %w = aten.param parameter "w" : tensor<2x2x3x3x!w>
    %b = aten.param parameter "b" : tensor<2xf32>
    %y = ref.conv_add(%x, %w, %b, %a) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x6x6x!x>, tensor<2x2x3x3x!w>, tensor<2xf32>, tensor<1x2x6x6x!x>) -> tensor<1x2x6x6x!y>
    func.return %y : tensor<1x2x6x6x!y>
  }
}
