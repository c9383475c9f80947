// RUN: qir-opt %s -p convert | filecheck %s

// Statistics become !quant.uniform types with torch.ao's parameters:
// u8 affine over [-1, 3] → scale 4/255, zero point round(255/4) = 64;
// the weight is quantized once into an int8 constant.

builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<2x3xf32>) -> tensor<2x2xf32> {
    %w = aten.param constant "w" = dense<[[1.0, -2.0, 0.5], [0.25, 0.5, -1.0]]> : tensor<2x3xf32>
    %xo = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, group 0>, stats = {min = -1.0 : f64, max = 3.0 : f64}} : tensor<2x3xf32>
    %wo = obs.observe %w {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>, stats = {min = array<f64: -2.0, -1.0>, max = array<f64: 1.0, 0.5>}} : tensor<2x3xf32>
    %l = aten.op "linear.default"(%xo, %wo) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x2xf32>
    func.return %l : tensor<2x2xf32>
  }
}

// CHECK:      builtin.module attributes {qir.stage = "quantized"}
// CHECK:      %[[Q:.*]] = quant.qcast %x : tensor<2x3xf32> to tensor<2x3x!quant.uniform<u8:f32, 1.568627{{[0-9]*}}e-02:64>>
// CHECK-NEXT: %[[DQ:.*]] = quant.dcast %[[Q]]
// CHECK-NEXT: %[[WQ:.*]] = aten.param constant "w_q" : tensor<2x3x!quant.uniform<i8:f32:0, {1.568627{{[0-9]*}}e-02,7.843137{{[0-9]*}}e-03}>>
// CHECK-NEXT: %[[WDQ:.*]] = quant.dcast %[[WQ]]
// CHECK-NEXT: aten.op "linear.default"(%[[DQ]], %[[WDQ]])
// CHECK-NOT:  obs.observe
