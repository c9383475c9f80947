builtin.module {
  func.func @f(%x: tensor<1x3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, %lx: tensor<2x8x!quant.uniform<u8:f32, 5.000000e-02:128>>, %a: tensor<2x4x!quant.uniform<u8:f32, 1.000000e-01:128>>) -> (tensor<1x4x8x8x!quant.uniform<u8:f32, 1.000000e-02:3>>, tensor<2x4x!quant.uniform<u8:f32, 1.250000e-01:5>>, tensor<2x12x!quant.uniform<u8:f32, 1.000000e-01:128>>, tensor<2x4x!quant.uniform<u8:f32, 2.000000e-01:128>>, tensor<2x4xf32>) {
    %w = aten.param constant "conv.weight" = dense<1> : tensor<4x3x3x3xi8>
    %wq = quant.scast %w : tensor<4x3x3x3xi8> to tensor<4x3x3x3x!quant.uniform<i8:f32:0, {1.000000e-01,2.000000e-01,3.000000e-01,4.000000e-01}>>
    %b = aten.param constant "conv.bias" = dense<0.000000e+00> : tensor<4xf32>
    %p = toy.prepack(%wq, %b) {stride = array<i64: 1, 1>, groups = 1 : i64, padding = array<i64: 1, 1>, module = "features.0", module_type = "torch.nn.modules.conv.Conv2d"} : (tensor<4x3x3x3x!quant.uniform<i8:f32:0, {1.000000e-01,2.000000e-01,3.000000e-01,4.000000e-01}>>, tensor<4xf32>) -> !toy.packed
    %conv = toy.qconv(%x, %p) {scale = 1.000000e-02 : f64, zero_point = 3 : i64, post = "relu", module = "features.0", module_type = "torch.nn.modules.conv.Conv2d"} : (tensor<1x3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, !toy.packed) -> tensor<1x4x8x8x!quant.uniform<u8:f32, 1.000000e-02:3>>
    %lw = aten.param constant "fc.weight" = dense<1> : tensor<4x8xi8>
    %lwq = quant.scast %lw : tensor<4x8xi8> to tensor<4x8x!quant.uniform<i8:f32:0, {1.000000e-01,1.000000e-01,1.000000e-01,1.000000e-01}>>
    %lb = aten.param constant "fc.bias" = dense<0.000000e+00> : tensor<4xf32>
    %gq = toy.qlinear(%lx, %lwq, %lb) {scale = 1.250000e-01 : f64, zero_point = 5 : i64, post = "gelu", module = "mlp.act", module_type = "torch.nn.modules.activation.GELU"} : (tensor<2x8x!quant.uniform<u8:f32, 5.000000e-02:128>>, tensor<4x8x!quant.uniform<i8:f32:0, {1.000000e-01,1.000000e-01,1.000000e-01,1.000000e-01}>>, tensor<4xf32>) -> tensor<2x4x!quant.uniform<u8:f32, 1.250000e-01:5>>
    %cat = toy.cat(%a, %a, %a) {dim = 1 : i64, n = 3 : i64} : (tensor<2x4x!quant.uniform<u8:f32, 1.000000e-01:128>>, tensor<2x4x!quant.uniform<u8:f32, 1.000000e-01:128>>, tensor<2x4x!quant.uniform<u8:f32, 1.000000e-01:128>>) -> tensor<2x12x!quant.uniform<u8:f32, 1.000000e-01:128>>
    %sum = toy.qadd(%a, %a) {scale = 2.000000e-01 : f64, relu = true, module = "head.add"} : (tensor<2x4x!quant.uniform<u8:f32, 1.000000e-01:128>>, tensor<2x4x!quant.uniform<u8:f32, 1.000000e-01:128>>) -> tensor<2x4x!quant.uniform<u8:f32, 2.000000e-01:128>>
    %float = quant.dcast %sum : tensor<2x4x!quant.uniform<u8:f32, 2.000000e-01:128>> to tensor<2x4xf32>
    %sig = aten.op "sigmoid.default"(%float) : (tensor<2x4xf32>) -> tensor<2x4xf32>
    func.return %conv, %gq, %cat, %sum, %sig : tensor<1x4x8x8x!quant.uniform<u8:f32, 1.000000e-02:3>>, tensor<2x4x!quant.uniform<u8:f32, 1.250000e-01:5>>, tensor<2x12x!quant.uniform<u8:f32, 1.000000e-01:128>>, tensor<2x4x!quant.uniform<u8:f32, 2.000000e-01:128>>, tensor<2x4xf32>
  }
}
