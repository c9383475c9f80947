// RUN: qir-opt %s -p canonicalize,canonicalize --print-ir-after-all -o %t.mlir 2>&1 | filecheck %s
// RUN: qir-opt %s -p canonicalize --print-between-passes -o %t.mlir 2>&1 | filecheck %s --check-prefix=ALIAS
// RUN: qir-opt %s -p canonicalize --print-ir-after-all 2>/dev/null | filecheck %s --check-prefix=STDOUT

// --print-ir-after-all writes mlir-opt's banner and the IR after each pass to
// stderr; stdout (or -o) gets only the result.

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    %dead = aten.op "neg.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    %0 = aten.op "relu.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// CHECK:      // -----// IR Dump After canonicalize //----- //
// CHECK-NEXT: builtin.module {
// CHECK-NOT:  neg.default
// CHECK:      aten.op "relu.default"
// CHECK:      // -----// IR Dump After canonicalize //----- //
// CHECK-NEXT: builtin.module {
// CHECK-NOT:  IR Dump

// ALIAS: // -----// IR Dump After canonicalize //----- //

// STDOUT-NOT: IR Dump
// STDOUT:     builtin.module {
// STDOUT-NOT: IR Dump
