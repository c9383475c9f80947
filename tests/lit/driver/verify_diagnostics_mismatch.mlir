// RUN: not qir-opt %s --split-input-file --verify-diagnostics 2>&1 | filecheck %s

// Unlike xDSL's, qir-opt's --verify-diagnostics fails (status 1) when an
// expected diagnostic is not produced, when an error is not expected, or when
// it comes on another line or with another message; it says which, where.

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{an error that never comes}}
    %0 = aten.op "relu.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}
// CHECK: verify_diagnostics_mismatch.mlir:[[# @LINE - 5]]:8: error: expected error "an error that never comes" was not produced

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    %0 = aten.op "relu.default"(%x, 1) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}
// CHECK: verify_diagnostics_mismatch.mlir:[[# @LINE - 4]]:5: error: unexpected error: aten.op 'relu.default': 2 positional arguments

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+2 {{2 positional arguments}}
    %0 = aten.op "relu.default"(%x, 1) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}
// CHECK: verify_diagnostics_mismatch.mlir:[[# @LINE - 4]]:5: error: unexpected error: aten.op 'relu.default': 2 positional arguments
// CHECK: verify_diagnostics_mismatch.mlir:[[# @LINE - 6]]:8: error: expected error "2 positional arguments" was not produced

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{another message}}
    %0 = aten.op "relu.default"(%x, 1) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}
// CHECK: verify_diagnostics_mismatch.mlir:[[# @LINE - 4]]:5: error: unexpected error: aten.op 'relu.default': 2 positional arguments
// CHECK: verify_diagnostics_mismatch.mlir:[[# @LINE - 6]]:8: error: expected error "another message" was not produced

// -----

// qir emits errors only: an error does not satisfy an expected-warning.

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-warning @+1 {{2 positional arguments}}
    %0 = aten.op "relu.default"(%x, 1) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}
// CHECK: verify_diagnostics_mismatch.mlir:[[# @LINE - 4]]:5: error: unexpected error
// CHECK: verify_diagnostics_mismatch.mlir:[[# @LINE - 6]]:8: error: expected warning "2 positional arguments" was not produced
// CHECK-NOT: Traceback
