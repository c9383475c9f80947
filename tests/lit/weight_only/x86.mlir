// RUN: qir-opt %s -p 'annotate{quantizer=weight-int4},propagate-annotations,insert-observers,convert,canonicalize,reference-rewrite{backend=x86},lower-x86' | filecheck %s --check-prefix=INT4
// RUN: qir-opt %s -p 'annotate{quantizer=weight-int8},propagate-annotations,insert-observers,convert,canonicalize,reference-rewrite{backend=x86},lower-x86' -o %t.mlir && qir-opt %t.mlir | filecheck %s --check-prefix=INT8
// RUN: qir-opt %s -p 'annotate{quantizer=weight-fp16},propagate-annotations,insert-observers,convert,canonicalize,reference-rewrite{backend=x86},lower-x86' | filecheck %s --check-prefix=FP16

// Weight-only on x86: an integer weight is packed once (`weight_only_pack`) for the kernels
// inductor generates (`weight_only_linear`), a float16 one by fbgemm (`linear_prepack_fp16`,
// `linear_fp16`); a table is packed for `embedding_lookup` (rows gathered, then dequantized).
// Written out with its weights, the lowered program parses back.

builtin.module {
  func.func @forward(%ids: tensor<1x1xi64>, %x: tensor<1x1x64xf32>) -> (tensor<1x1x16xf32>, tensor<1x1x4xf32>) {
    %table = aten.param constant "table" = dense<[[0.0, 1.0, 2.0, 3.0], [-1.0, 0.5, 0.25, 1.5], [2.0, 2.0, -2.0, 0.0]]> : tensor<3x4xf32>
    %w = aten.param constant "w" = dense<0.5> : tensor<16x64xf32>
    %b = aten.param constant "b" = dense<0.25> : tensor<16xf32>
    %e = aten.op "embedding.default"(%table, %ids) : (tensor<3x4xf32>, tensor<1x1xi64>) -> tensor<1x1x4xf32>
    %y = aten.op "linear.default"(%x, %w, %b) : (tensor<1x1x64xf32>, tensor<16x64xf32>, tensor<16xf32>) -> tensor<1x1x16xf32>
    func.return %y, %e : tensor<1x1x16xf32>, tensor<1x1x4xf32>
  }
}

// INT4:      builtin.module attributes {qir.stage = "lowered", qir.target = "{{.*}}", qir.backend = "x86"}
// INT4:      %[[T:.*]] = x86.embedding_pack(%{{.*}}) : (tensor<3x4x!quant.uniform<u8:f32:0, {{.*}}>>) -> !x86.packed_embedding
// INT4-NEXT: %[[E:.*]] = x86.embedding_lookup(%[[T]], %ids) : (!x86.packed_embedding, tensor<1x1xi64>) -> tensor<1x1x4xf32>
// INT4:      %[[PK:.*]] = x86.weight_only_pack(%{{.*}}) : (tensor<16x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{.*}}>>) -> !x86.packed_weight_only
// INT4-NEXT: %[[Y:.*]] = x86.weight_only_linear(%x, %[[PK]], %b) : (tensor<1x1x64xf32>, !x86.packed_weight_only, tensor<16xf32>) -> tensor<1x1x16xf32>
// INT4-NOT:  ref.
// INT4:      func.return %[[Y]], %[[E]]

// INT8:      x86.embedding_lookup
// INT8:      %[[PK:.*]] = x86.weight_only_pack(%{{.*}}) : (tensor<16x64x!quant.uniform<i8:f32:0, {{.*}}>>) -> !x86.packed_weight_only
// INT8-NEXT: x86.weight_only_linear(%x, %[[PK]], %b)

// FP16:      %[[T:.*]] = x86.embedding_pack(%{{.*}}) : (tensor<3x4xf16>) -> !x86.packed_embedding
// FP16:      %[[PK:.*]] = x86.linear_prepack_fp16(%{{.*}}, %b) : (tensor<16x64xf16>, tensor<16xf32>) -> !x86.packed_linear_fp16
// FP16-NEXT: x86.linear_fp16(%x, %[[PK]]) : (tensor<1x1x64xf32>, !x86.packed_linear_fp16) -> tensor<1x1x16xf32>
