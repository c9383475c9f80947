// RUN: %python %S/../reference/Inputs/weights.py %S/Inputs/linear_embedding.mlir %t.w.safetensors
// RUN: qir-opt %S/Inputs/linear_embedding.mlir --weights %t.w.safetensors -o %t.float.mlir
// RUN: qir-opt %t.float.mlir -p 'annotate{quantizer=weight-int8}' -o %t.annotated.mlir
// RUN: qir-opt %t.annotated.mlir -p propagate-annotations,insert-observers | qir-opt --weights %t.float.safetensors -p convert,canonicalize -o %t.quantized.mlir
// RUN: qir-opt %t.quantized.mlir -p 'reference-rewrite{backend=x86}' -o %t.reference.mlir
// RUN: qir-opt %t.reference.mlir -p lower-x86 -o %t.lowered.mlir
// RUN: filecheck %s --check-prefix=ANNOTATED --input-file %t.annotated.mlir
// RUN: qir-opt %t.annotated.mlir -p propagate-annotations,insert-observers | filecheck %s --check-prefix=OBSERVED
// RUN: filecheck %s --check-prefix=QUANTIZED --input-file %t.quantized.mlir
// RUN: filecheck %s --check-prefix=REFERENCE --input-file %t.reference.mlir
// RUN: qir-opt %t.lowered.mlir | filecheck %s --check-prefix=LOWERED
// RUN: %python %S/../Inputs/run_stages.py %t.float.mlir %t.quantized.mlir %t.reference.mlir %t.lowered.mlir --error 0.02 --ids-below 10 | filecheck %s --check-prefix=NUMERICS

// Weight-only int8, stage by stage, each stage's text read by the next qir-opt (through a pipe
// from observe to convert, the float weights given with --weights; through files written with
// -o otherwise, new weights beside them), and every stage run against the one before it
// (Inputs/linear_embedding.mlir: a 10x8 table and a 16x64 linear).

// The weight symmetric per output channel, the table uint8 per row.
// ANNOTATED:      builtin.module attributes {qir.stage = "annotated"}
// ANNOTATED:      aten.op "embedding.default"(%table, %ids) {qin = [#obs.spec<u8[0:255], affine, per_channel_minmax, axis 0>, none]}
// ANNOTATED-NEXT: aten.op "linear.default"(%x, %w, %b) {qin = [none, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0>, none]}

// Observed when the program is prepared: a minimum and maximum per row.
// OBSERVED:      builtin.module attributes {qir.stage = "observed"}
// OBSERVED:      obs.observe %table {id = "obs0", spec = #obs.spec<u8[0:255], affine, per_channel_minmax, axis 0, group 0>, stats = {min = array<f64: {{.*}}>, max = array<f64: {{.*}}>}}
// OBSERVED:      obs.observe %w {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>, stats = {min = array<f64: {{.*}}>, max = array<f64: {{.*}}>}}

// QUANTIZED:      builtin.module attributes {qir.stage = "quantized"}
// QUANTIZED:      %[[T:.*]] = aten.param parameter "embed.weight_q" : tensor<10x8x!quant.uniform<u8:f32:0, {{.*}}>>
// QUANTIZED-NEXT: quant.dcast %[[T]]
// QUANTIZED:      %[[W:.*]] = aten.param parameter "fc.weight_q" : tensor<16x64x!quant.uniform<i8:f32:0, {{.*}}>>
// QUANTIZED-NEXT: %[[WD:.*]] = quant.dcast %[[W]]
// QUANTIZED-NEXT: aten.op "linear.default"(%x, %[[WD]], %b)

// REFERENCE:      builtin.module attributes {qir.stage = "reference"
// REFERENCE:      ref.weight_only_embedding(%{{.*}}, %ids) : (tensor<10x8x!quant.uniform<u8:f32:0, {{.*}}>>, tensor<1x3xi64>) -> tensor<1x3x8xf32>
// REFERENCE:      ref.weight_only_linear(%x, %{{.*}}, %b) : (tensor<1x3x64xf32>, tensor<16x64x!quant.uniform<i8:f32:0, {{.*}}>>, tensor<16xf32>) -> tensor<1x3x16xf32>

// LOWERED:      builtin.module attributes {qir.stage = "lowered", qir.target = "{{.*}}", qir.backend = "x86"}
// LOWERED:      x86.embedding_lookup
// LOWERED:      %[[PK:.*]] = x86.weight_only_pack(%{{.*}}) : (tensor<16x64x!quant.uniform<i8:f32:0, {{.*}}>>) -> !x86.packed_weight_only
// LOWERED-NEXT: x86.weight_only_linear(%x, %[[PK]], %b)
// LOWERED-NOT:  ref.

// NUMERICS:      float: runs
// NUMERICS-NEXT: quantized: within 0.02 of float
// NUMERICS-NEXT: reference: equal to quantized up to 1e-05
// NUMERICS-NEXT: lowered: equal to reference up to 1e-05
