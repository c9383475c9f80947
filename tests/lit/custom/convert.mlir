// RUN: qir-opt %s -p convert | filecheck %s
// RUN: qir-opt %s -p convert,reference-rewrite,lower-reference | filecheck %s --check-prefix=LOWERED

// convert gives a custom module observed at its boundary its quantized form: it sees its
// input as the dequantize before it gives it (u8 over [0, 5.1]: scale 0.02, zero point 0)
// and its output as the quantize after it takes it (u8 over [-1, 1.55]: scale 0.01, zero
// point 100); an integer argument stays as it is. The operands and results stay float, so
// lowering keeps the op and the casts around it as for any float op.

builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<2x16xf32>, %ids: tensor<2xi64>) -> tensor<2x16xf32> {
    %xo = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, group 0>, stats = {min = 0.0 : f64, max = 5.1 : f64}} : tensor<2x16xf32>
    %a = custom.call observed "attn"(%xo, %ids) : (tensor<2x16xf32>, tensor<2xi64>) -> tensor<2x16xf32>
    %ao = obs.observe %a {id = "obs1", spec = #obs.spec<u8[0:255], affine, minmax, group 1>, stats = {min = -1.0 : f64, max = 1.55 : f64}} : tensor<2x16xf32>
    %r = aten.op "relu.default"(%ao) : (tensor<2x16xf32>) -> tensor<2x16xf32>
    func.return %r : tensor<2x16xf32>
  }
}

// CHECK:      %[[Q:.*]] = quant.qcast %x : tensor<2x16xf32> to tensor<2x16x!quant.uniform<u8:f32, {{1.99999[0-9]*e-02}}>>
// CHECK-NEXT: %[[DQ:.*]] = quant.dcast %[[Q]]
// CHECK-NEXT: %[[A:.*]] = custom.call quantized "attn"(%[[DQ]], %ids) as (tensor<2x16x!quant.uniform<u8:f32, {{1.99999[0-9]*e-02}}>>, tensor<2xi64>) -> tensor<2x16x!quant.uniform<u8:f32, {{9.99999[0-9]*e-03}}:100>> : (tensor<2x16xf32>, tensor<2xi64>) -> tensor<2x16xf32>
// CHECK-NEXT: %[[AQ:.*]] = quant.qcast %[[A]] : tensor<2x16xf32> to tensor<2x16x!quant.uniform<u8:f32, {{9.99999[0-9]*e-03}}:100>>

// LOWERED:     builtin.module attributes {qir.stage = "lowered", qir.backend = "reference"}
// LOWERED:     custom.call quantized "attn"({{.*}}) as (tensor<2x16x!quant.uniform<u8:f32, {{1.99999[0-9]*e-02}}>>, tensor<2xi64>) -> tensor<2x16x!quant.uniform<u8:f32, {{9.99999[0-9]*e-03}}:100>>
