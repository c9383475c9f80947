// RUN: qir-opt %s -p insert-observers | filecheck %s

// One observer per group; the weight's observer runs now and carries its statistics.

builtin.module attributes {qir.stage = "annotated"} {
  func.func @forward(%x: tensor<2x3xf32>) -> tensor<2x2xf32> {
    %w = aten.param constant "w" = dense<[[1.0, -2.0, 0.5], [0.25, 0.5, -1.0]]> : tensor<2x3xf32>
    %l = aten.op "linear.default"(%x, %w) {qin = [#obs.spec<u8[0:255], affine, minmax, group 0>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>], qout = [#obs.spec<u8[0:255], affine, minmax, group 2>]} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x2xf32>
    func.return %l : tensor<2x2xf32>
  }
}

// CHECK:      builtin.module attributes {qir.stage = "observed"}
// CHECK:      %[[X:.*]] = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, group 0>} : tensor<2x3xf32>
// CHECK-NEXT: %[[W:.*]] = obs.observe %w {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>, stats = {min = array<f64: -2.000000e+00, -1.000000e+00>, max = array<f64: 1.000000e+00, 5.000000e-01>}}
// CHECK-NEXT: %[[L:.*]] = aten.op "linear.default"(%[[X]], %[[W]]) :
// CHECK-NEXT: obs.observe %[[L]] {id = "obs2"
// CHECK-NOT:  qin
