// RUN: %python %S/../reference/Inputs/weights.py %S/Inputs/linear_embedding.mlir %t.w.safetensors
// RUN: qir-opt %S/Inputs/linear_embedding.mlir --weights %t.w.safetensors -o %t.float.mlir
// RUN: qir-opt %t.float.mlir -p 'annotate{quantizer=weight-int4}' | qir-opt --weights %t.float.safetensors -p propagate-annotations,insert-observers -o %t.observed.mlir
// RUN: qir-opt %t.observed.mlir -p convert,canonicalize -o %t.quantized.mlir
// RUN: qir-opt %t.quantized.mlir -p 'reference-rewrite{backend=x86}' -o %t.reference.mlir
// RUN: qir-opt %t.reference.mlir -p lower-x86 -o %t.lowered.mlir
// RUN: filecheck %s --check-prefix=OBSERVED --input-file %t.observed.mlir
// RUN: filecheck %s --check-prefix=QUANTIZED --input-file %t.quantized.mlir
// RUN: filecheck %s --check-prefix=REFERENCE --input-file %t.reference.mlir
// RUN: qir-opt %t.lowered.mlir -o %t.again.mlir
// RUN: diff %t.lowered.mlir %t.again.mlir
// RUN: filecheck %s --check-prefix=LOWERED --input-file %t.again.mlir
// RUN: %python %S/../Inputs/run_stages.py %t.float.mlir %t.quantized.mlir %t.reference.mlir %t.lowered.mlir --error 0.15 --ids-below 10 | filecheck %s --check-prefix=NUMERICS

// Weight-only int4 (groups of 32 inputs, uint4 with a zero point per group), stage by stage as
// stages_int8.mlir does; the observed program (its statistics in the text) is what convert
// reads, and the lowered one, read and written again, is the same text.

// OBSERVED:      builtin.module attributes {qir.stage = "observed"}
// OBSERVED:      obs.observe %table {id = "obs0", spec = #obs.spec<u8[0:255], affine, per_channel_minmax, axis 0, group 0>, stats =
// OBSERVED:      obs.observe %w {id = "obs1", spec = #obs.spec<u4[0:15], affine, per_group_minmax, axis 0, block 32, group 1>, stats = {min = array<f64: {{.*}}>, max = array<f64: {{.*}}>}}

// QUANTIZED:      aten.param parameter "fc.weight_q" : tensor<16x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{\{}}{{\{}}{{.*}}}}>>

// REFERENCE:      ref.weight_only_embedding(%{{.*}}, %ids) : (tensor<10x8x!quant.uniform<u8:f32:0, {{.*}}>>, tensor<1x3xi64>)
// REFERENCE:      ref.weight_only_linear(%x, %{{.*}}, %b) : (tensor<1x3x64xf32>, tensor<16x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{.*}}>>, tensor<16xf32>)

// LOWERED:      x86.embedding_pack(%{{.*}}) : (tensor<10x8x!quant.uniform<u8:f32:0, {{.*}}>>) -> !x86.packed_embedding
// LOWERED:      %[[PK:.*]] = x86.weight_only_pack(%{{.*}}) : (tensor<16x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{.*}}>>) -> !x86.packed_weight_only
// LOWERED-NEXT: x86.weight_only_linear(%x, %[[PK]], %b)

// NUMERICS:      float: runs
// NUMERICS-NEXT: quantized: within 0.15 of float
// NUMERICS-NEXT: reference: equal to quantized up to 1e-05
// NUMERICS-NEXT: lowered: equal to reference up to 1e-05
