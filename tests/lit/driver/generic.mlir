// RUN: qir-opt %s --print-op-generic | filecheck %s
// RUN: qir-opt %s --print-op-generic | qir-opt | filecheck %s --check-prefix=BACK
// RUN: qir-opt %s --print-debuginfo | filecheck %s --check-prefix=LOC

// The generic form shows the stored properties (operands as #aten.operand<i>),
// and reads back into the custom form.

builtin.module {
  func.func @forward(%x: tensor<2x3xf32>) -> tensor<3xf32> {
    %0 = aten.op "sum.dim_IntList"(%x, [0], keepdim = false) : (tensor<2x3xf32>) -> tensor<3xf32> loc("model.py":12:4)
    func.return %0 : tensor<3xf32>
  }
}

// CHECK:      "builtin.module"() ({
// CHECK-NEXT:   "func.func"() <{sym_name = "forward", function_type = (tensor<2x3xf32>) -> tensor<3xf32>}> ({
// CHECK-NEXT:   ^bb0(%x: tensor<2x3xf32>):
// CHECK-NEXT:     %0 = "aten.op"(%x) <{target = "sum.dim_IntList", args = [#aten.operand<0>, [0 : i64]], kwargs = {keepdim = false}}> : (tensor<2x3xf32>) -> tensor<3xf32>
// CHECK-NEXT:     "func.return"(%0) : (tensor<3xf32>) -> ()

// BACK:       %0 = aten.op "sum.dim_IntList"(%x, [0], keepdim = false) : (tensor<2x3xf32>) -> tensor<3xf32>

// LOC:        aten.op "sum.dim_IntList"(%x, [0], keepdim = false) : (tensor<2x3xf32>) -> tensor<3xf32> loc("model.py":12:4)
