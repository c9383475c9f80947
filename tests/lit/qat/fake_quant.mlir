// RUN: qir-opt %s | filecheck %s --check-prefix=TEXT
// RUN: qir-opt %s -p convert | filecheck %s --check-prefix=CONVERT

// A QAT program mid-training prints and parses back: statistics, frozen and disabled states kept.
// convert treats a fake quantization as an observer with the same statistics.

builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<2x3xf32>) -> tensor<2x2xf32> {
    %w = aten.param parameter "fc.weight" = dense<[[1.0, -2.0, 0.5], [0.25, 0.5, -1.0]]> : tensor<2x3xf32>
    %xq = obs.fake_quant %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, moving_minmax, group 0>, stats = {min = 0.0, max = 2.55}, frozen} : tensor<2x3xf32>
    %wq = obs.fake_quant %w {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>, stats = {min = array<f64: -2.0, -1.0>, max = array<f64: 1.0, 0.5>}} : tensor<2x3xf32>
    %l = aten.op "linear.default"(%xq, %wq) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x2xf32>
    %lq = obs.fake_quant %l {id = "obs2", spec = #obs.spec<u8[0:255], affine, moving_minmax, group 2>, stats = {min = -1.0, max = 1.0}, disabled} : tensor<2x2xf32>
    func.return %lq : tensor<2x2xf32>
  }
}

// TEXT:      obs.fake_quant %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, moving_minmax, group 0>, stats = {min = 0.000000e+00 : f64, max = 2.550000e+00 : f64}, frozen} : tensor<2x3xf32>
// TEXT:      obs.fake_quant %w {id = "obs1", {{.*}}stats = {min = array<f64: -2.000000e+00, -1.000000e+00>, max = array<f64: 1.000000e+00, 5.000000e-01>}}
// TEXT:      obs.fake_quant %l {id = "obs2", {{.*}}, disabled}

// Scales 2.55 / 255, 2 / 127.5 and 1 / 127.5 per channel, 2 / 255 with zero point 127 (torch.ao's arithmetic):
// CONVERT:      quant.qcast %x : tensor<2x3xf32> to tensor<2x3x!quant.uniform<u8:f32, 9.999999776482582e-03>>
// CONVERT:      aten.param parameter "fc.weight_q" : tensor<2x3x!quant.uniform<i8:f32:0, {1.568627543747425e-02,7.843137718737125e-03}>>
// CONVERT:      quant.qcast %l : tensor<2x2xf32> to tensor<2x2x!quant.uniform<u8:f32, 7.843137718737125e-03:127>>
// CONVERT-NOT:  obs.
