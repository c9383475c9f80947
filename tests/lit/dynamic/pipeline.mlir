// RUN: qir-opt %s -p 'annotate{quantizer=dynamic target=x86-avx512-vnni}' | filecheck %s --check-prefix=ANNOTATE
// RUN: qir-opt %s -p 'annotate{quantizer=dynamic target=x86-avx512-vnni},propagate-annotations,insert-observers' | filecheck %s --check-prefix=OBSERVE
// RUN: qir-opt %s -p 'annotate{quantizer=dynamic target=x86-avx512-vnni},propagate-annotations,insert-observers,convert,canonicalize' | filecheck %s --check-prefix=CONVERT
// RUN: qir-opt %s -p 'annotate{quantizer=dynamic target=x86-avx2},propagate-annotations,insert-observers' | filecheck %s --check-prefix=AVX2
// RUN: qir-opt %s -p 'annotate{quantizer=dynamic-per-tensor target=x86-avx2}' | filecheck %s --check-prefix=TENSOR

// DynamicQuantizer annotates every linear with a constant weight: its input quantized at run
// time (per token on a VNNI target), its weight int8 per channel; bias and result stay float.
// The product of two activations (the matmul) is not quantized.

builtin.module {
  func.func @forward(%x: tensor<2x4x8xf32>) -> (tensor<2x4x6xf32>, tensor<2x4x4xf32>) {
    %wa = aten.param constant "wa" = dense<0.5> : tensor<6x8xf32>
    %ba = aten.param constant "ba" = dense<0.1> : tensor<6xf32>
    %wb = aten.param constant "wb" = dense<-0.25> : tensor<6x8xf32>
    %a = aten.op "linear.default"(%x, %wa, %ba) : (tensor<2x4x8xf32>, tensor<6x8xf32>, tensor<6xf32>) -> tensor<2x4x6xf32>
    %b = aten.op "linear.default"(%x, %wb) : (tensor<2x4x8xf32>, tensor<6x8xf32>) -> tensor<2x4x6xf32>
    %bt = aten.op "transpose.int"(%b, 1, 2) : (tensor<2x4x6xf32>) -> tensor<2x6x4xf32>
    %m = aten.op "matmul.default"(%a, %bt) : (tensor<2x4x6xf32>, tensor<2x6x4xf32>) -> tensor<2x4x4xf32>
    func.return %a, %m : tensor<2x4x6xf32>, tensor<2x4x4xf32>
  }
}

// ANNOTATE:      builtin.module attributes {qir.target = "x86-avx512-vnni", qir.stage = "annotated"}
// ANNOTATE:      aten.op "linear.default"(%x, %wa, %ba) {qin = [#obs.spec<i8[-127:127], symmetric, minmax, dynamic, per_token>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0>, none]}
// ANNOTATE-NEXT: aten.op "linear.default"(%x, %wb) {qin = [#obs.spec<i8[-127:127], symmetric, minmax, dynamic, per_token>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0>]}
// ANNOTATE-NOT:  qout
// ANNOTATE:      aten.op "matmul.default"(%a, %bt) :

// The two linears reading %x share one dynamic observer; it records nothing.
// OBSERVE:      %[[X:.*]] = obs.observe %x {id = "obs0", spec = #obs.spec<i8[-127:127], symmetric, minmax, dynamic, per_token, group 0>} : tensor<2x4x8xf32>
// OBSERVE-NEXT: %[[WA:.*]] = obs.observe %wa {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>, stats =
// OBSERVE-NEXT: aten.op "linear.default"(%[[X]], %[[WA]], %ba) :
// OBSERVE-NEXT: %[[WB:.*]] = obs.observe %wb {id = "obs3"
// OBSERVE-NEXT: aten.op "linear.default"(%[[X]], %[[WB]]) :
// OBSERVE-NOT:  obs.observe

// Convert: parameters chosen per row at run time, quantize and dequantize with them; once for both.
// CONVERT:      %[[S:.*]], %[[Z:.*]] = quant.choose_qparams %x {quantized_type = !quant.any<i8<-127:127>:f32>, symmetric} : tensor<2x4x8xf32> -> (tensor<2x4x1xf32>, tensor<2x4x1xi64>)
// CONVERT-NEXT: %[[Q:.*]] = quant.dynamic_qcast %x, %[[S]], %[[Z]] : (tensor<2x4x8xf32>, tensor<2x4x1xf32>, tensor<2x4x1xi64>) -> tensor<2x4x8x!quant.any<i8<-127:127>:f32>>
// CONVERT-NEXT: %[[DQ:.*]] = quant.dynamic_dcast %[[Q]], %[[S]], %[[Z]] : (tensor<2x4x8x!quant.any<i8<-127:127>:f32>>, tensor<2x4x1xf32>, tensor<2x4x1xi64>) -> tensor<2x4x8xf32>
// CONVERT:      aten.op "linear.default"(%[[DQ]], %{{.*}}, %ba)
// CONVERT:      aten.op "linear.default"(%[[DQ]], %{{.*}})
// CONVERT-NOT:  quant.choose_qparams

// Without VNNI (x86-avx2), the weights are fitted to the kernels' int16 pairs: an int8 input runs
// on them as uint8 q + 128, up to 255; per tensor, a uint8 input up to 255 too.
// AVX2:      builtin.module attributes {qir.target = "x86-avx2", qir.stage = "observed"}
// AVX2:      obs.observe %x {id = "obs0", spec = #obs.spec<i8[-127:127], symmetric, minmax, dynamic, per_token, group 0>}
// AVX2-NEXT: obs.observe %wa {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, int16_pairs 255, group 1>
// TENSOR:    aten.op "linear.default"(%x, %wa, %ba) {qin = [#obs.spec<u8[0:255], affine, minmax, dynamic>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, int16_pairs 255>, none]}
