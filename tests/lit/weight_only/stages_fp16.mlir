// RUN: %python %S/../reference/Inputs/weights.py %S/Inputs/linear_embedding.mlir %t.w.safetensors
// RUN: qir-opt %S/Inputs/linear_embedding.mlir --weights %t.w.safetensors -o %t.float.mlir
// RUN: qir-opt %t.float.mlir -p 'annotate{quantizer=weight-fp16}' | qir-opt --weights %t.float.safetensors -p propagate-annotations,insert-observers | qir-opt --weights %t.float.safetensors -p convert,canonicalize -o %t.quantized.mlir
// RUN: qir-opt %t.quantized.mlir -p 'reference-rewrite{backend=x86}' -o %t.reference.mlir
// RUN: qir-opt %t.reference.mlir -p lower-x86 -o %t.lowered.mlir
// RUN: filecheck %s --check-prefix=QUANTIZED --input-file %t.quantized.mlir
// RUN: qir-opt %t.lowered.mlir | filecheck %s --check-prefix=LOWERED
// RUN: %python %S/../Inputs/run_stages.py %t.float.mlir %t.quantized.mlir %t.reference.mlir %t.lowered.mlir --error 0.001 --ids-below 10 | filecheck %s --check-prefix=NUMERICS

// Weight-only float16, annotate to convert through pipes, then stage by stage as
// stages_int8.mlir does: the weight and the table rounded to float16, run by fbgemm's
// linear_fp16 and a gather.

// QUANTIZED:      %[[T:.*]] = aten.param parameter "embed.weight_f16" : tensor<10x8xf16>
// QUANTIZED:      %[[W:.*]] = aten.param parameter "fc.weight_f16" : tensor<16x64xf16>

// LOWERED:      x86.embedding_pack(%{{.*}}) : (tensor<10x8xf16>) -> !x86.packed_embedding
// LOWERED:      %[[PK:.*]] = x86.linear_prepack_fp16(%{{.*}}, %b) : (tensor<16x64xf16>, tensor<16xf32>) -> !x86.packed_linear_fp16
// LOWERED-NEXT: x86.linear_fp16(%x, %[[PK]])

// NUMERICS:      float: runs
// NUMERICS-NEXT: quantized: within 0.001 of float
// NUMERICS-NEXT: reference: equal to quantized up to 1e-05
// NUMERICS-NEXT: lowered: equal to reference up to 1e-05
