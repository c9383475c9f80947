// RUN: not qir-opt %s -p convert 2>&1 | filecheck %s --check-prefix=STAGE
// RUN: not qir-opt %s -p nosuch-pass 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: not qir-opt %s -p 'canonicalize{bogus=1}' 2>&1 | filecheck %s --check-prefix=OPTION
// RUN: not qir-opt %s -p 'canonicalize{' 2>&1 | filecheck %s --check-prefix=SYNTAX
// RUN: not qir-opt %S/does-not-exist.mlir 2>&1 | filecheck %s --check-prefix=MISSING
// RUN: not qir-opt %s --no-such-flag 2>&1 | filecheck %s --check-prefix=FLAG
// RUN: not qir-opt %s -p convert -o %t.mlir 2>&1 && not test -e %t.mlir

// User errors are one line on stderr, `file:line:col: error: ...` when there is
// a place to point at, `qir-opt: error: ...` when not; status 1; no traceback;
// no output file.

builtin.module attributes {qir.stage = "float"} {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    func.return %x : tensor<2xf32>
  }
}

// STAGE:       errors.mlir:[[# @LINE - 6]]:1: error: pass 'convert' needs a program at stage 'observed', but it would run on stage 'float'
// STAGE-EMPTY:
// UNKNOWN:     {{^}}qir-opt: error: unknown pass 'nosuch-pass' (available: {{.*}}canonicalize{{.*}})
// UNKNOWN-EMPTY:
// OPTION:      {{^}}qir-opt: error: pass 'canonicalize': bad options: {{.*}}bogus
// SYNTAX:      {{^}}qir-opt: error: cannot parse pipeline 'canonicalize{'
// MISSING:     {{^}}qir-opt: error: {{.*}}does-not-exist.mlir: No such file or directory
// FLAG:        {{^}}qir-opt: error: unrecognized arguments: --no-such-flag
