// RUN: qir-opt %s --split-input-file | filecheck %s
// RUN: qir-opt %s --split-input-file -p canonicalize | filecheck %s --check-prefix=CANON

// Each chunk is its own module: names may repeat, and the outputs are joined
// by the same marker.

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    %0 = aten.op "relu.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    %dead = aten.op "neg.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    %0 = aten.op "sigmoid.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

// A chunk of comments only is an empty module, as in mlir-opt.

// CHECK:      builtin.module {
// CHECK:        aten.op "relu.default"
// CHECK:      // {{-----}}
// CHECK-NEXT: builtin.module {
// CHECK:        aten.op "neg.default"
// CHECK:        aten.op "sigmoid.default"
// CHECK:      // {{-----}}
// CHECK-NEXT: builtin.module {
// CHECK-NEXT: }

// CANON:     // {{-----}}
// CANON-NOT: neg.default
// CANON:     sigmoid.default
