// RUN: %python %S/../reference/Inputs/weights.py %S/Inputs/mlp.mlir %t.w.safetensors
// RUN: qir-opt %S/Inputs/mlp.mlir --weights %t.w.safetensors -o %t.float.mlir
// RUN: qir-opt %t.float.mlir -p annotate{quantizer=dynamic} | qir-opt --weights %t.float.safetensors -p propagate-annotations,insert-observers -o %t.observed.mlir
// RUN: qir-opt %t.observed.mlir -p convert,canonicalize -o %t.quantized.mlir
// RUN: qir-opt %t.quantized.mlir -p reference-rewrite{backend=x86} -o %t.reference.mlir
// RUN: qir-opt %t.reference.mlir -p lower-x86 -o %t.lowered.mlir
// RUN: filecheck %s --check-prefix=OBSERVED --input-file %t.observed.mlir
// RUN: filecheck %s --check-prefix=QUANTIZED --input-file %t.quantized.mlir
// RUN: filecheck %s --check-prefix=REFERENCE --input-file %t.reference.mlir
// RUN: qir-opt %t.lowered.mlir -o %t.again.mlir
// RUN: diff %t.lowered.mlir %t.again.mlir
// RUN: filecheck %s --check-prefix=LOWERED --input-file %t.again.mlir
// RUN: %python %S/../Inputs/run_stages.py %t.float.mlir %t.quantized.mlir %t.reference.mlir %t.lowered.mlir --error 0.02 | filecheck %s --check-prefix=NUMERICS

// Dynamic quantization (per token, for the host), stage by stage: annotate to observe through a
// pipe (the float weights given with --weights), the rest through files written with -o (new
// weights beside them); the lowered program, read and written again, is the same text; each
// stage runs against the one before it. The matmul of two activations stays float throughout.

// The input's observer records nothing (parameters are chosen at run time); the weights' record
// their range per row now.
// OBSERVED:      builtin.module attributes {{.*}}qir.stage = "observed"}
// OBSERVED:      obs.observe %x {id = "obs0", spec = #obs.spec<i8[-127:127], symmetric, minmax, dynamic, per_token, group 0>} : tensor<2x4x32xf32>
// OBSERVED-NEXT: obs.observe %w1 {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0{{.*}}>, stats = {min = array<f64: {{.*}}>, max = array<f64: {{.*}}>}}
// OBSERVED:      obs.observe %r {id = "obs{{.*}}", spec = #obs.spec<i8[-127:127], symmetric, minmax, dynamic, per_token, group {{.*}}>} : tensor<2x4x48xf32>

// QUANTIZED:      %[[S:.*]], %[[Z:.*]] = quant.choose_qparams %x {quantized_type = !quant.any<i8<-127:127>:f32>, symmetric} : tensor<2x4x32xf32> -> (tensor<2x4x1xf32>, tensor<2x4x1xi64>)
// QUANTIZED-NEXT: %[[Q:.*]] = quant.dynamic_qcast %x, %[[S]], %[[Z]]
// QUANTIZED-NEXT: %[[DQ:.*]] = quant.dynamic_dcast %[[Q]], %[[S]], %[[Z]]
// QUANTIZED:      aten.param parameter "fc1.weight_q" : tensor<48x32x!quant.uniform<i8:f32:0, {{.*}}>>
// QUANTIZED:      aten.op "linear.default"(%[[DQ]], %{{.*}}, %b1)
// QUANTIZED:      quant.choose_qparams %r
// QUANTIZED:      aten.op "matmul.default"

// REFERENCE:      builtin.module attributes {{.*}}qir.stage = "reference"
// REFERENCE:      %[[S:.*]], %[[Z:.*]] = quant.choose_qparams %x
// REFERENCE-NEXT: %[[Q:.*]] = quant.dynamic_qcast %x, %[[S]], %[[Z]]
// REFERENCE:      ref.dynamic_linear(%[[Q]], %[[S]], %[[Z]], %{{.*}}, %b1) : (tensor<2x4x32x!quant.any<i8<-127:127>:f32>>, tensor<2x4x1xf32>, tensor<2x4x1xi64>, tensor<48x32x!quant.uniform<i8:f32:0, {{.*}}>>, tensor<48xf32>) -> tensor<2x4x48xf32>
// REFERENCE:      ref.dynamic_linear
// REFERENCE-NOT:  quant.dynamic_dcast

// LOWERED:      builtin.module attributes {{.*}}qir.stage = "lowered"{{.*}}qir.backend = "x86"
// LOWERED:      %[[S:.*]], %[[Z:.*]] = x86.choose_qparams(%x) {quantized_type = !quant.any<i8<-127:127>:f32>, symmetric}
// LOWERED-NEXT: %[[Q:.*]] = x86.dynamic_quantize(%x, %[[S]], %[[Z]])
// LOWERED:      x86.dynamic_linear(%[[Q]], %[[S]], %[[Z]], %{{.*}}, %b1)
// LOWERED:      x86.dynamic_linear
// LOWERED-NOT:  ref.
// LOWERED:      aten.op "matmul.default"

// NUMERICS:      float: runs
// NUMERICS-NEXT: quantized: within 0.02 of float
// NUMERICS-NEXT: reference: equal to quantized up to 1e-05
// NUMERICS-NEXT: lowered: equal to reference up to 1e-05
