// RUN: qir-opt %s -p smooth-quant | filecheck %s

// Two linears read the smoothed %x (an attention's projections): one multiplication, with
// scales from the larger weight column of the two. Column 1 reaches 4 in %w2, so
// s = sqrt(64) / sqrt(4) = 4. %w1's observer is also read by a linear of another input: that
// linear keeps it, and the smoothed one gets a copy under a fresh id.

builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<3x2xf32>, %y: tensor<3x2xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>) {
    %w1 = aten.param constant "w1" = dense<[[1.0, -1.0], [0.5, 1.0]]> : tensor<2x2xf32>
    %w2 = aten.param constant "w2" = dense<[[1.0, 4.0], [0.5, 1.0]]> : tensor<2x2xf32>
    %xo = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, smooth 0.5, group 0>, stats = {min = array<f64: -1.0, -32.0>, max = array<f64: 1.0, 64.0>}} : tensor<3x2xf32>
    %yo = obs.observe %y {id = "obs3", spec = #obs.spec<u8[0:255], affine, minmax, group 3>, stats = {min = -1.0 : f64, max = 1.0 : f64}} : tensor<3x2xf32>
    %w1o = obs.observe %w1 {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>, stats = {min = array<f64: -1.0, 0.5>, max = array<f64: 1.0, 1.0>}} : tensor<2x2xf32>
    %w2o = obs.observe %w2 {id = "obs2", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 2>, stats = {min = array<f64: 1.0, 0.5>, max = array<f64: 4.0, 1.0>}} : tensor<2x2xf32>
    %a = aten.op "linear.default"(%xo, %w1o) : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
    %b = aten.op "linear.default"(%xo, %w2o) : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
    %c = aten.op "linear.default"(%yo, %w1o) : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
    func.return %a, %b, %c : tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>
  }
}

// CHECK:          %[[XS:.*]] = aten.op "mul.Tensor"(%x, %{{.*}})
// CHECK-NOT:      aten.op "mul.Tensor"
// CHECK:          %[[XO:.*]] = obs.observe %[[XS]] {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, group 0>, stats = {min = -8.000000e+00 : f64, max = 1.600000e+01 : f64}}
// CHECK-DAG:      %[[W1O:.*]] = obs.observe %w1 {id = "obs1"
// CHECK-DAG:      %[[W1S:.*]] = aten.param constant "w1_smoothed" : tensor<2x2xf32>
// CHECK-DAG:      %[[W1SO:.*]] = obs.observe %[[W1S]] {id = "obs1_s1", {{.*}} stats = {min = array<f64: -4.000000e+00, 5.000000e-01>, max = array<f64: 1.000000e+00, 4.000000e+00>}}
// CHECK-DAG:      %[[W2S:.*]] = aten.param constant "w2_smoothed" : tensor<2x2xf32>
// CHECK-DAG:      %[[W2O:.*]] = obs.observe %[[W2S]] {id = "obs2", {{.*}} stats = {min = array<f64: 1.000000e+00, 5.000000e-01>, max = array<f64: 1.600000e+01, 4.000000e+00>}}
// CHECK:          aten.op "linear.default"(%[[XO]], %[[W1SO]])
// CHECK:          aten.op "linear.default"(%[[XO]], %[[W2O]])
// CHECK:          aten.op "linear.default"(%yo, %[[W1O]])
