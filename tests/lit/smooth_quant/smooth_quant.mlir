// RUN: qir-opt %s -p smooth-quant | filecheck %s
// RUN: qir-opt %s -p smooth-quant,convert | filecheck %s --check-prefix=CONVERT

// Channel 1 of %x ranges over [-32, 64], channel 0 over [-1, 1]; both weight columns reach 1.
// alpha 0.5: s = sqrt(64) / sqrt(1) = 8 for channel 1 (a power of two already), 1 for channel 0.
// %x is multiplied by 1/s, the weight's column 1 by s, and the range of the smoothed input is
// the channel ranges divided: [min(-1, -32/8), max(1, 64/8)] = [-4, 8].

builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
    %w = aten.param constant "w" = dense<[[1.0, -1.0], [0.5, 1.0]]> : tensor<2x2xf32>
    %xo = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, smooth 0.5, group 0>, stats = {min = array<f64: -1.0, -32.0>, max = array<f64: 1.0, 64.0>}} : tensor<3x2xf32>
    %wo = obs.observe %w {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>, stats = {min = array<f64: -1.0, 0.5>, max = array<f64: 1.0, 1.0>}} : tensor<2x2xf32>
    %l = aten.op "linear.default"(%xo, %wo) : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
    func.return %l : tensor<3x2xf32>
  }
}

// CHECK:      %[[INV:.*]] = aten.param constant "x.smoothing" : tensor<2xf32>
// CHECK-NEXT: %[[XS:.*]] = aten.op "mul.Tensor"(%x, %[[INV]]) {smoothing} : (tensor<3x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
// CHECK-NEXT: %[[XO:.*]] = obs.observe %[[XS]] {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, group 0>, stats = {min = -4.000000e+00 : f64, max = 8.000000e+00 : f64}}
// CHECK-NEXT: %[[WS:.*]] = aten.param constant "w_smoothed" : tensor<2x2xf32>
// CHECK-NEXT: %[[WO:.*]] = obs.observe %[[WS]] {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>, stats = {min = array<f64: -8.000000e+00, 5.000000e-01>, max = array<f64: 1.000000e+00, 8.000000e+00>}}
// CHECK-NEXT: aten.op "linear.default"(%[[XO]], %[[WO]])
// CHECK-NOT:  smooth 0.5

// u8 affine over [-4, 8]: scale 12/255, zero point round(4 / (12/255)) = 85; the smoothed weight
// [[1, -8], [0.5, 8]] reaches 8 in both rows: scale 8 / 127.5.
// CONVERT:    quant.qcast %{{.*}} : tensor<3x2xf32> to tensor<3x2x!quant.uniform<u8:f32, 4.705882{{[0-9]*}}e-02:85>>
// CONVERT:    aten.param constant "w_smoothed_q" : tensor<2x2x!quant.uniform<i8:f32:0, {6.27451{{[0-9]*}}e-02,6.27451{{[0-9]*}}e-02}>>
