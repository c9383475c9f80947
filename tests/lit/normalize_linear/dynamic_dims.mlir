// RUN: qir-opt %s -p normalize-linear | filecheck %s

// With dynamic batch and sequence, GPT-2 unflattens each projection's output to
// `[sym_size(ids, 0), sym_size(ids, 1), N]`, sizes of the token ids, not of the projection's
// input. The pass knows which dimensions are equal through embeddings, elementwise ops, layer
// norms, linears, `arange(sym_size)` and reshapes, and folds the views when they are.

builtin.module attributes {qir.stage = "float"} {
  // CHECK-LABEL: func.func @gpt2_like(
  // CHECK:         %[[E:.*]] = aten.op "embedding.default"
  // CHECK:         %[[H:.*]] = aten.op "add.Tensor"(%[[E]], %{{.*}})
  // CHECK-NEXT:    %[[N:.*]] = aten.op "layer_norm.default"(%[[H]]
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%[[N]], %{{.*}}, %{{.*}}) : (tensor<?x?x4xf32>, tensor<6x4xf32>, tensor<6xf32>) -> tensor<?x?x6xf32>
  // CHECK-NEXT:    %[[G:.*]] = aten.op "gelu.default"(%[[Y]])
  // CHECK-NEXT:    %[[Z:.*]] = aten.op "linear.default"(%[[G]], %{{.*}}, %{{.*}}) : (tensor<?x?x6xf32>, tensor<4x6xf32>, tensor<4xf32>) -> tensor<?x?x4xf32>
  // CHECK-NEXT:    func.return %[[Z]]
  func.func @gpt2_like(%ids: tensor<?x?xi64>) -> tensor<?x?x4xf32> {
    %wte = aten.param parameter "wte" = dense<0.5> : tensor<10x4xf32>
    %wpe = aten.param parameter "wpe" = dense<0.25> : tensor<8x4xf32>
    %w1 = aten.param parameter "fc.weight" = dense<0.25> : tensor<4x6xf32>
    %b1 = aten.param parameter "fc.bias" = dense<0.5> : tensor<6xf32>
    %w2 = aten.param parameter "proj.weight" = dense<0.25> : tensor<6x4xf32>
    %b2 = aten.param parameter "proj.bias" = dense<0.5> : tensor<4xf32>
    %s0 = aten.op "sym_size.int"(%ids, 0) : (tensor<?x?xi64>) -> i64
    %s1 = aten.op "sym_size.int"(%ids, 1) : (tensor<?x?xi64>) -> i64
    %flat_ids = aten.op "view.default"(%ids, [-1, %s1]) : (tensor<?x?xi64>, i64) -> tensor<?x?xi64>
    %e = aten.op "embedding.default"(%wte, %flat_ids) : (tensor<10x4xf32>, tensor<?x?xi64>) -> tensor<?x?x4xf32>
    %pos = aten.op "arange.default"(%s1) : (i64) -> tensor<?xi64>
    %pos1 = aten.op "unsqueeze.default"(%pos, 0) : (tensor<?xi64>) -> tensor<1x?xi64>
    %p = aten.op "embedding.default"(%wpe, %pos1) : (tensor<8x4xf32>, tensor<1x?xi64>) -> tensor<1x?x4xf32>
    %h = aten.op "add.Tensor"(%e, %p) : (tensor<?x?x4xf32>, tensor<1x?x4xf32>) -> tensor<?x?x4xf32>
    %n = aten.op "layer_norm.default"(%h, [4]) : (tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
    %v1 = aten.op "view.default"(%n, [-1, 4]) : (tensor<?x?x4xf32>) -> tensor<?x4xf32>
    %a1 = aten.op "addmm.default"(%b1, %v1, %w1) : (tensor<6xf32>, tensor<?x4xf32>, tensor<4x6xf32>) -> tensor<?x6xf32>
    %y1 = aten.op "view.default"(%a1, [%s0, %s1, 6]) : (tensor<?x6xf32>, i64, i64) -> tensor<?x?x6xf32>
    %g = aten.op "gelu.default"(%y1) : (tensor<?x?x6xf32>) -> tensor<?x?x6xf32>
    %v2 = aten.op "view.default"(%g, [-1, 6]) : (tensor<?x?x6xf32>) -> tensor<?x6xf32>
    %a2 = aten.op "addmm.default"(%b2, %v2, %w2) : (tensor<4xf32>, tensor<?x6xf32>, tensor<6x4xf32>) -> tensor<?x4xf32>
    %y2 = aten.op "view.default"(%a2, [%s0, %s1, 4]) : (tensor<?x4xf32>, i64, i64) -> tensor<?x?x4xf32>
    func.return %y2 : tensor<?x?x4xf32>
  }

  // Not known equal: an add with an operand whose dimensions come from elsewhere (it may
  // broadcast), and a slice (its length is not the input's). The views stay.
  // CHECK-LABEL: func.func @unknown(
  // CHECK:         aten.op "linear.default"(%{{.*}}) : (tensor<?x4xf32>,
  // CHECK-NEXT:    aten.op "view.default"(%{{.*}}, [%{{.*}}, %{{.*}}, 6])
  // CHECK:         aten.op "linear.default"(%{{.*}}) : (tensor<?x4xf32>,
  // CHECK-NEXT:    aten.op "view.default"(%{{.*}}, [%{{.*}}, %{{.*}}, 6])
  func.func @unknown(%x: tensor<?x?x4xf32>, %other: tensor<?x?x4xf32>) -> (tensor<?x?x6xf32>, tensor<?x?x6xf32>) {
    %w = aten.param parameter "w" = dense<0.25> : tensor<4x6xf32>
    %b = aten.param parameter "b" = dense<0.5> : tensor<6xf32>
    %s0 = aten.op "sym_size.int"(%x, 0) : (tensor<?x?x4xf32>) -> i64
    %s1 = aten.op "sym_size.int"(%x, 1) : (tensor<?x?x4xf32>) -> i64
    %h = aten.op "add.Tensor"(%x, %other) : (tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
    %v = aten.op "view.default"(%h, [-1, 4]) : (tensor<?x?x4xf32>) -> tensor<?x4xf32>
    %a = aten.op "addmm.default"(%b, %v, %w) : (tensor<6xf32>, tensor<?x4xf32>, tensor<4x6xf32>) -> tensor<?x6xf32>
    %y = aten.op "view.default"(%a, [%s0, %s1, 6]) : (tensor<?x6xf32>, i64, i64) -> tensor<?x?x6xf32>
    %c = aten.op "slice.Tensor"(%x, 1, 0, 3) : (tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
    %v2 = aten.op "view.default"(%c, [-1, 4]) : (tensor<?x?x4xf32>) -> tensor<?x4xf32>
    %a2 = aten.op "addmm.default"(%b, %v2, %w) : (tensor<6xf32>, tensor<?x4xf32>, tensor<4x6xf32>) -> tensor<?x6xf32>
    %y2 = aten.op "view.default"(%a2, [%s0, %s1, 6]) : (tensor<?x6xf32>, i64, i64) -> tensor<?x?x6xf32>
    func.return %y, %y2 : tensor<?x?x6xf32>, tensor<?x?x6xf32>
  }
}
