// RUN: qir-opt %s -p 'annotate{quantizer=weight-int8}' | filecheck %s --check-prefix=ANNOTATE
// RUN: qir-opt %s -p 'annotate{quantizer=weight-int8},propagate-annotations,insert-observers,convert,canonicalize,reference-rewrite' | filecheck %s --check-prefix=REF
// RUN: qir-opt %s -p 'annotate{quantizer=weight-int8},propagate-annotations,insert-observers,convert,canonicalize,reference-rewrite' -o %t.mlir && qir-opt %t.mlir | filecheck %s --check-prefix=REF
// RUN: qir-opt %s -p 'annotate{quantizer=weight-int8},propagate-annotations,insert-observers,convert,canonicalize,reference-rewrite{backend=x86},lower-x86' | filecheck %s --check-prefix=X86

// The bags of an `nn.EmbeddingBag` (`aten.embedding_bag.padding_idx`, as torch.export gives
// it) read a table stored per row, as an embedding's does: the table is annotated, observed
// and stored uint8 with a scale and zero point per row, once (every bag reads it with one
// spec). reference-rewrite writes the bags as `ref.weight_only_embedding_bag` (the mode,
// `include_last_offset`, `padding_idx` and the per-sample weights carried over). x86 runs
// sums and means of 8-bit tables on fbgemm's rowwise kernel (the table packed in its layout),
// and other bags (here a max) by gathering and dequantizing only the rows looked up before
// bagging them. A bag whose bookkeeping results are read too (which bag each index went to)
// keeps the dequantized table and ATen's op.

builtin.module {
  func.func @forward(%ids: tensor<6xi64>, %offsets: tensor<3xi64>, %w: tensor<6xf32>) -> (tensor<3x4xf32>, tensor<2x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<6xi64>) {
    %table = aten.param constant "table" = dense<[[0.0, 1.0, 2.0, 3.0], [-1.0, 0.5, 0.25, 1.5], [2.0, 2.0, -2.0, 0.0]]> : tensor<3x4xf32>
    %mean, %m1, %m2, %m3 = aten.op "embedding_bag.padding_idx"(%table, %ids, %offsets, false, 1, false, none, false, 2) : (tensor<3x4xf32>, tensor<6xi64>, tensor<3xi64>) -> (tensor<3x4xf32>, tensor<6xi64>, tensor<3xi64>, tensor<3xi64>)
    %sum, %s1, %s2, %s3 = aten.op "embedding_bag.padding_idx"(%table, %ids, %offsets, false, 0, false, %w, true, none) : (tensor<3x4xf32>, tensor<6xi64>, tensor<3xi64>, tensor<6xf32>) -> (tensor<2x4xf32>, tensor<6xi64>, tensor<2xi64>, tensor<2xi64>)
    %max, %x1, %x2, %x3 = aten.op "embedding_bag.padding_idx"(%table, %ids, %offsets, false, 2, false, none, false, none) : (tensor<3x4xf32>, tensor<6xi64>, tensor<3xi64>) -> (tensor<3x4xf32>, tensor<6xi64>, tensor<3xi64>, tensor<3xi64>)
    %kept, %bag_of, %k2, %k3 = aten.op "_embedding_bag.default"(%table, %ids, %offsets, false, 2) : (tensor<3x4xf32>, tensor<6xi64>, tensor<3xi64>) -> (tensor<3x4xf32>, tensor<6xi64>, tensor<3xi64>, tensor<3xi64>)
    func.return %mean, %sum, %max, %kept, %bag_of : tensor<3x4xf32>, tensor<2x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>, tensor<6xi64>
  }
}

// ANNOTATE:      aten.op "embedding_bag.padding_idx"(%table, %ids, %offsets, false, 1, false, none, false, 2) {qin = [#obs.spec<u8[0:255], affine, per_channel_minmax, axis 0>, none, none]}
// ANNOTATE:      aten.op "embedding_bag.padding_idx"(%table, %ids, %offsets, false, 0, false, %w, true, none) {qin = [#obs.spec<u8[0:255], affine, per_channel_minmax, axis 0>, none, none, none]}
// ANNOTATE:      aten.op "embedding_bag.padding_idx"(%table, %ids, %offsets, false, 2, false, none, false, none) {qin = [#obs.spec<u8[0:255], affine, per_channel_minmax, axis 0>, none, none]}
// ANNOTATE:      aten.op "_embedding_bag.default"(%table, %ids, %offsets, false, 2) {qin = [#obs.spec<u8[0:255], affine, per_channel_minmax, axis 0>, none, none]}

// REF:      %[[T:.*]] = aten.param constant "table_q" : tensor<3x4x!quant.uniform<u8:f32:0, {{.*}}>>
// REF-NEXT: %[[D:.*]] = quant.dcast %[[T]]
// REF-NEXT: %mean = ref.weight_only_embedding_bag(%[[T]], %ids, %offsets) {mode = "mean", padding_idx = 2 : i64} : (tensor<3x4x!quant.uniform<u8:f32:0, {{.*}}>>, tensor<6xi64>, tensor<3xi64>) -> tensor<3x4xf32>
// REF-NEXT: %sum = ref.weight_only_embedding_bag(%[[T]], %ids, %offsets, %w) {mode = "sum", include_last_offset = true} : ({{.*}}, tensor<6xi64>, tensor<3xi64>, tensor<6xf32>) -> tensor<2x4xf32>
// REF-NEXT: %max = ref.weight_only_embedding_bag(%[[T]], %ids, %offsets) {mode = "max"}
// REF-NEXT: %kept, %bag_of, %{{.*}}, %{{.*}} = aten.op "_embedding_bag.default"(%[[D]], %ids, %offsets, false, 2)
// REF:      func.return %mean, %sum, %max, %kept, %bag_of

// X86:      %[[T:.*]] = x86.embedding_rows_pack(%{{.*}}) : (tensor<3x4x!quant.uniform<u8:f32:0, {{.*}}>>) -> !x86.packed_embedding_rows
// X86-NEXT: %mean = x86.embedding_bag_rowwise(%[[T]], %ids, %offsets) {mode = "mean", padding_idx = 2 : i64} : (!x86.packed_embedding_rows, tensor<6xi64>, tensor<3xi64>) -> tensor<3x4xf32>
// X86:      %[[T2:.*]] = x86.embedding_rows_pack(%{{.*}}) : (tensor<3x4x!quant.uniform<u8:f32:0, {{.*}}>>) -> !x86.packed_embedding_rows
// X86-NEXT: %sum = x86.embedding_bag_rowwise(%[[T2]], %ids, %offsets, %w) {mode = "sum", include_last_offset = true} : (!x86.packed_embedding_rows, tensor<6xi64>, tensor<3xi64>, tensor<6xf32>) -> tensor<2x4xf32>
// X86:      %[[T3:.*]] = x86.embedding_pack(%{{.*}}) : (tensor<3x4x!quant.uniform<u8:f32:0, {{.*}}>>) -> !x86.packed_embedding
// X86-NEXT: %max = x86.embedding_bag_lookup(%[[T3]], %ids, %offsets) {mode = "max"} : (!x86.packed_embedding, tensor<6xi64>, tensor<3xi64>) -> tensor<3x4xf32>
// X86-NOT:  ref.weight_only_embedding_bag
