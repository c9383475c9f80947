// RUN: qir-opt %s --split-input-file --verify-diagnostics | filecheck %s

// mlir-opt's --verify-diagnostics: each error must be announced by an
// `expected-error` on its line (or @+N, @-N, @above, @below), and the chunks
// that do not fail are printed.

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    %0 = aten.op "relu.default"(%x, 1) : (tensor<2xf32>) -> tensor<2xf32> // expected-error {{the schema takes at most 1}}
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    %0 = aten.op "relu.default"(%x, 1) : (tensor<2xf32>) -> tensor<2xf32>
    // expected-error @above {{2 positional arguments}}
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @below {{torch has no such operator overload}}
    %0 = aten.op "relu.nosuch"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    %0 = aten.op "relu.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<3xf32>


    // expected-error @-3 {{previously used or defined with type tensor<2xf32>}}
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error-re @+1 {{argument 'alpha' expects Scalar, got "{{[a-z]+}}"}}
    %0 = aten.op "add.Tensor"(%x, %x, alpha = "two") : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @survivor(%x: tensor<2xf32>) -> tensor<2xf32> {
    func.return %x : tensor<2xf32>
  }
}

// CHECK-NOT:  aten.op
// CHECK:      builtin.module {
// CHECK-NEXT:   func.func @survivor
// CHECK-NOT:  // {{-----}}
