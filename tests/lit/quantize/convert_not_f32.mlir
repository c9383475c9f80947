// RUN: qir-opt %s -p convert --verify-diagnostics

// A quantized type expresses float32: an observer of a float64 value (only a
// hand-written or custom annotation places one) is an error naming the observer,
// not a quant.qcast that leaves invalid IR.

builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<2x3xf64>) -> tensor<2x3xf64> {
    // expected-error @+1 {{pass 'convert' failed: observes a f64 value, but its quantized type}}
    %xo = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, group 0>, stats = {min = -1.0 : f64, max = 3.0 : f64}} : tensor<2x3xf64>
    %r = aten.op "relu.default"(%xo) : (tensor<2x3xf64>) -> tensor<2x3xf64>
    func.return %r : tensor<2x3xf64>
  }
}
