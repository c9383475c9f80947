// RUN: qir-opt %s -p canonicalize --timing -o %t.mlir 2>&1 | filecheck %s
// RUN: qir-opt %s -p canonicalize --time-passes -o %t.mlir 2>&1 | filecheck %s
// RUN: qir-opt %s -p canonicalize --timing 2>/dev/null | filecheck %s --check-prefix=STDOUT

// --timing reports each pass (time, share, ops before -> after, rewrites) on stderr;
// xDSL's --time-passes is the same report.

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    %dead = aten.op "neg.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    %0 = aten.op "relu.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// CHECK:      qir pass execution timing report
// CHECK-NEXT: total: {{[0-9.]+}} ms
// CHECK:      {{[0-9.]+ +[0-9.]+ +4->3 +canonicalize}}

// STDOUT-NOT: timing report
// STDOUT:     builtin.module
// STDOUT-NOT: timing report
