// RUN: qir-opt %s -p 'annotate{quantizer=weight-int4}' | filecheck %s --check-prefix=ANNOTATE
// RUN: qir-opt %s -p 'annotate{quantizer=weight-int4},propagate-annotations,insert-observers' | filecheck %s --check-prefix=OBSERVE
// RUN: qir-opt %s -p 'annotate{quantizer=weight-int4},propagate-annotations,insert-observers,convert,canonicalize' | filecheck %s --check-prefix=CONVERT
// RUN: qir-opt %s -p 'annotate{quantizer=weight-int4},propagate-annotations,insert-observers,convert,canonicalize,reference-rewrite' | filecheck %s --check-prefix=REF
// RUN: qir-opt %s -p 'annotate{quantizer=weight-int4},propagate-annotations,insert-observers,convert,canonicalize,reference-rewrite' -o %t.mlir && qir-opt %t.mlir | filecheck %s --check-prefix=REF
// RUN: qir-opt %s -p 'annotate{quantizer=weight-int8},propagate-annotations,insert-observers,convert,canonicalize,reference-rewrite' | filecheck %s --check-prefix=INT8

// Weight-only: the linear's weight (groups of 32 inputs of each output channel, uint4 with a
// zero point per group) and the embedding table (uint8, a scale and zero point per row) are
// quantized; activations, bias and results stay float. The matmul of two activations is left.

builtin.module {
  func.func @forward(%ids: tensor<1x3xi64>, %x: tensor<1x3x64xf32>) -> (tensor<1x3x2xf32>, tensor<1x3x3xf32>) {
    %table = aten.param constant "table" = dense<[[0.0, 1.0, 2.0, 3.0], [-1.0, 0.5, 0.25, 1.5], [2.0, 2.0, -2.0, 0.0]]> : tensor<3x4xf32>
    %w = aten.param constant "w" = dense<0.5> : tensor<2x64xf32>
    %b = aten.param constant "b" = dense<0.25> : tensor<2xf32>
    %e = aten.op "embedding.default"(%table, %ids) : (tensor<3x4xf32>, tensor<1x3xi64>) -> tensor<1x3x4xf32>
    %y = aten.op "linear.default"(%x, %w, %b) : (tensor<1x3x64xf32>, tensor<2x64xf32>, tensor<2xf32>) -> tensor<1x3x2xf32>
    %et = aten.op "transpose.int"(%e, 1, 2) : (tensor<1x3x4xf32>) -> tensor<1x4x3xf32>
    %m = aten.op "matmul.default"(%e, %et) : (tensor<1x3x4xf32>, tensor<1x4x3xf32>) -> tensor<1x3x3xf32>
    func.return %y, %m : tensor<1x3x2xf32>, tensor<1x3x3xf32>
  }
}

// ANNOTATE:      aten.op "embedding.default"(%table, %ids) {qin = [#obs.spec<u8[0:255], affine, per_channel_minmax, axis 0>, none]}
// ANNOTATE-NEXT: aten.op "linear.default"(%x, %w, %b) {qin = [none, #obs.spec<u4[0:15], affine, per_group_minmax, axis 0, block 32>, none]}
// ANNOTATE-NOT:  qout
// ANNOTATE:      aten.op "matmul.default"(%e, %et) :

// The weights are observed now, at compile time: a minimum and maximum per row (2 rows of 2
// groups for the linear's weight).
// OBSERVE:      %[[T:.*]] = obs.observe %table {id = "obs0", spec = #obs.spec<u8[0:255], affine, per_channel_minmax, axis 0, group 0>, stats = {min = array<f64: 0.000000e+00, -1.000000e+00, -2.000000e+00>, max = array<f64: 3.000000e+00, 1.500000e+00, 2.000000e+00>}}
// OBSERVE:      %[[W:.*]] = obs.observe %w {id = "obs1", spec = #obs.spec<u4[0:15], affine, per_group_minmax, axis 0, block 32, group 1>, stats = {min = array<f64: 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01>, max = array<f64: 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01>}}
// OBSERVE-NEXT: aten.op "linear.default"(%x, %[[W]], %b) :

// Convert: the table per row (per axis 0), the weight sub-channel ({0:1, 1:32}: one scale and
// zero point per row and group of 32), both dequantized where they are read.
// CONVERT:      %[[TQ:.*]] = aten.param constant "table_q" : tensor<3x4x!quant.uniform<u8:f32:0, {1.1764706{{[0-9]*}}e-02,9.8039219{{[0-9]*}}e-03:102,1.5686275{{[0-9]*}}e-02:127}>>
// CONVERT-NEXT: %[[TD:.*]] = quant.dcast %[[TQ]]
// CONVERT-NEXT: aten.op "embedding.default"(%[[TD]], %ids)
// CONVERT:      %[[WQ:.*]] = aten.param constant "w_q" : tensor<2x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{\{}}{3.3333335{{[0-9]*}}e-02, 3.3333335{{[0-9]*}}e-02}, {3.3333335{{[0-9]*}}e-02, 3.3333335{{[0-9]*}}e-02}}>>
// CONVERT-NEXT: %[[WD:.*]] = quant.dcast %[[WQ]] : tensor<2x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{.*}}>> to tensor<2x64xf32>
// CONVERT-NEXT: aten.op "linear.default"(%x, %[[WD]], %b)

// reference-rewrite: the weight-only ops read the narrow constants directly.
// REF:      %[[E:.*]] = ref.weight_only_embedding(%{{.*}}, %ids) : (tensor<3x4x!quant.uniform<u8:f32:0, {{.*}}>>, tensor<1x3xi64>) -> tensor<1x3x4xf32>
// REF:      %[[Y:.*]] = ref.weight_only_linear(%x, %{{.*}}, %b) : (tensor<1x3x64xf32>, tensor<2x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{.*}}>>, tensor<2xf32>) -> tensor<1x3x2xf32>
// REF-NOT:  quant.dcast
// REF:      aten.op "matmul.default"(%[[E]], %{{.*}})

// int8: symmetric per output channel, the table uint8 per row.
// INT8:     ref.weight_only_embedding(%{{.*}}, %ids) : (tensor<3x4x!quant.uniform<u8:f32:0, {{.*}}>>
// INT8:     ref.weight_only_linear(%x, %{{.*}}, %b) : (tensor<1x3x64xf32>, tensor<2x64x!quant.uniform<i8:f32:0, {3.921568{{[0-9]*}}e-03,3.921568{{[0-9]*}}e-03}>>, tensor<2xf32>)
