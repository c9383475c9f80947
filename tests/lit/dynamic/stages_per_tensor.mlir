// RUN: %python %S/../reference/Inputs/weights.py %S/Inputs/mlp.mlir %t.w.safetensors
// RUN: qir-opt %S/Inputs/mlp.mlir --weights %t.w.safetensors -o %t.float.mlir
// RUN: qir-opt %t.float.mlir -p annotate{quantizer=dynamic-per-tensor} | qir-opt --weights %t.float.safetensors -p propagate-annotations,insert-observers | qir-opt --weights %t.float.safetensors -p convert,canonicalize -o %t.quantized.mlir
// RUN: qir-opt %t.quantized.mlir -p reference-rewrite{backend=x86} -o %t.reference.mlir
// RUN: qir-opt %t.reference.mlir -p lower-x86 -o %t.lowered.mlir
// RUN: filecheck %s --check-prefix=QUANTIZED --input-file %t.quantized.mlir
// RUN: qir-opt %t.lowered.mlir | filecheck %s --check-prefix=LOWERED
// RUN: %python %S/../Inputs/run_stages.py %t.float.mlir %t.quantized.mlir %t.reference.mlir %t.lowered.mlir --error 0.02 | filecheck %s --check-prefix=NUMERICS

// Dynamic quantization per tensor (uint8, one scale and zero point for the whole input), annotate
// to convert through pipes, then stage by stage as stages.mlir does.

// QUANTIZED:      %[[S:.*]], %[[Z:.*]] = quant.choose_qparams %x {quantized_type = !quant.any<u8:f32>} : tensor<2x4x32xf32> -> (tensor<f32>, tensor<i64>)
// QUANTIZED-NEXT: quant.dynamic_qcast %x, %[[S]], %[[Z]] : (tensor<2x4x32xf32>, tensor<f32>, tensor<i64>) -> tensor<2x4x32x!quant.any<u8:f32>>

// LOWERED:      %[[S:.*]], %[[Z:.*]] = x86.choose_qparams(%x) {quantized_type = !quant.any<u8:f32>}
// LOWERED-NEXT: %[[Q:.*]] = x86.dynamic_quantize(%x, %[[S]], %[[Z]])
// LOWERED:      x86.dynamic_linear(%[[Q]], %[[S]], %[[Z]], %{{.*}}, %b1)
// LOWERED:      x86.dynamic_linear
// LOWERED-NOT:  ref.

// NUMERICS:      float: runs
// NUMERICS-NEXT: quantized: within 0.02 of float
// NUMERICS-NEXT: reference: equal to quantized up to 1e-05
// NUMERICS-NEXT: lowered: equal to reference up to 1e-05
