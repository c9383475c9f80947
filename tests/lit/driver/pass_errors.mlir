// RUN: qir-opt %s -p convert --split-input-file --verify-diagnostics | filecheck %s
// RUN: not qir-opt %s -p convert --split-input-file 2>&1 | filecheck %s --check-prefix=ONE

// A pass that fails, and a pipeline that does not fit the program's stage, are
// errors at a place in the file: the op the pass names, or the module.

builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
    // expected-error @+1 {{pass 'convert' failed: observer obs0 saw no data}}
    %xo = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, group 0>} : tensor<2x3xf32>
    %r = aten.op "relu.default"(%xo) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    func.return %r : tensor<2x3xf32>
  }
}

// -----

// expected-error @+1 {{pass 'convert' needs a program at stage 'observed', but it would run on stage 'float'}}
builtin.module attributes {qir.stage = "float"} {
}

// -----

builtin.module attributes {qir.stage = "observed"} {
  func.func @calibrated(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
    %xo = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, group 0>, stats = {min = -1.0 : f64, max = 3.0 : f64}} : tensor<2x3xf32>
    %r = aten.op "relu.default"(%xo) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    func.return %r : tensor<2x3xf32>
  }
}

// CHECK:     builtin.module attributes {qir.stage = "quantized"}
// CHECK:     func.func @calibrated
// CHECK:     quant.qcast
// CHECK-NOT: builtin.module

// The first failing chunk ends the run, in one line.
// ONE:       pass_errors.mlir:10:5: error: pass 'convert' failed: observer obs0 saw no data: calibrate before convert (call the module qir.prepare returned on representative inputs); {{.*}} (at obs.observe)
// ONE-EMPTY:
