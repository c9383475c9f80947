// RUN: qir-opt %s -p convert | filecheck %s

// A weight spec with `int16_pairs 255` (what the x86 quantizer writes for a target without
// VNNI): its kernel adds pairs of uint8 x int8 products in int16, so each channel gets the
// smallest scale at which no pair can overflow with activations up to 255. Channel 0 at its own
// scale (1/127.5) would be [127, 127, 0, 0]: 2 x 127 x 255 > 32767, so its scale grows until
// the pair is [64, 64]. Channel 1 ([127, -127, 127, -127]: each pair has one positive and one
// negative weight) keeps its scale.

builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<2x4xf32>) -> tensor<2x2xf32> {
    %w = aten.param constant "w" = dense<[[1.0, 1.0, 0.0, 0.0], [1.0, -1.0, 1.0, -1.0]]> : tensor<2x4xf32>
    %xo = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, group 0>, stats = {min = 0.0 : f64, max = 2.55 : f64}} : tensor<2x4xf32>
    %wo = obs.observe %w {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, int16_pairs 255, group 1>, stats = {min = array<f64: 0.0, -1.0>, max = array<f64: 1.0, 1.0>}} : tensor<2x4xf32>
    %l = aten.op "linear.default"(%xo, %wo) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x2xf32>
    func.return %l : tensor<2x2xf32>
  }
}

// CHECK:      builtin.module attributes {qir.stage = "quantized"}
// CHECK:      aten.param constant "w_q" : tensor<2x4x!quant.uniform<i8:f32:0, {1.562500e-02,7.843137{{[0-9]*}}e-03}>>
// CHECK-NOT:  obs.observe
