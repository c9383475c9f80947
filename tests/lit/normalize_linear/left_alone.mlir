// RUN: qir-opt %s -p normalize-linear | filecheck %s
// RUN: qir-opt %s -p 'normalize-linear{keep-tied=true}' | filecheck %s --check-prefix=TIED

// What is not a linear layer with a constant weight, or cannot become one exactly, stays as it is.

builtin.module attributes {qir.stage = "float"} {
  // Attention: products of two activations.
  // CHECK-LABEL: func.func @attention(
  // CHECK-NEXT:    aten.op "bmm.default"(%q, %k)
  // CHECK-NEXT:    aten.op "matmul.default"(%q, %k)
  // CHECK-NEXT:    aten.op "mm.default"(%a, %b)
  // CHECK-NEXT:    func.return
  func.func @attention(%q: tensor<2x4x8xf32>, %k: tensor<2x8x4xf32>, %a: tensor<4x8xf32>, %b: tensor<8x4xf32>) -> (tensor<2x4x4xf32>, tensor<2x4x4xf32>, tensor<4x4xf32>) {
    %s = aten.op "bmm.default"(%q, %k) : (tensor<2x4x8xf32>, tensor<2x8x4xf32>) -> tensor<2x4x4xf32>
    %m = aten.op "matmul.default"(%q, %k) : (tensor<2x4x8xf32>, tensor<2x8x4xf32>) -> tensor<2x4x4xf32>
    %p = aten.op "mm.default"(%a, %b) : (tensor<4x8xf32>, tensor<8x4xf32>) -> tensor<4x4xf32>
    func.return %s, %m, %p : tensor<2x4x4xf32>, tensor<2x4x4xf32>, tensor<4x4xf32>
  }

  // A constant on the left (W @ x), a 3-D constant (batched weights), a 1-D x.
  // CHECK-LABEL: func.func @shapes(
  // CHECK:         aten.op "mm.default"(%w, %x)
  // CHECK-NEXT:    aten.op "matmul.default"(%x3, %w3)
  // CHECK-NEXT:    aten.op "matmul.default"(%v, %w)
  // CHECK-NEXT:    func.return
  func.func @shapes(%x: tensor<3x5xf32>, %x3: tensor<2x4x3xf32>, %v: tensor<2xf32>) -> (tensor<2x5xf32>, tensor<2x4x2xf32>, tensor<3xf32>) {
    %w = aten.param parameter "w" = dense<1.0> : tensor<2x3xf32>
    %w3 = aten.param parameter "w3" = dense<1.0> : tensor<2x3x2xf32>
    %a = aten.op "mm.default"(%w, %x) : (tensor<2x3xf32>, tensor<3x5xf32>) -> tensor<2x5xf32>
    %b = aten.op "matmul.default"(%x3, %w3) : (tensor<2x4x3xf32>, tensor<2x3x2xf32>) -> tensor<2x4x2xf32>
    %c = aten.op "matmul.default"(%v, %w) : (tensor<2xf32>, tensor<2x3xf32>) -> tensor<3xf32>
    func.return %a, %b, %c : tensor<2x5xf32>, tensor<2x4x2xf32>, tensor<3xf32>
  }

  // Weights that are not constants: written by aten.param_update, or in place; not float.
  // CHECK-LABEL: func.func @not_constant(
  // CHECK:         aten.op "mm.default"(%x, %w)
  // CHECK:         aten.op "mm.default"(%x, %u)
  // CHECK:         aten.op "mm.default"(%i, %n)
  // CHECK-NOT:     linear
  func.func @not_constant(%x: tensor<4x3xf32>, %new: tensor<3x2xf32>, %i: tensor<4x3xi64>) -> (tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xi64>) {
    %w = aten.param buffer "running_w" = dense<1.0> : tensor<3x2xf32>
    %u = aten.param parameter "u" = dense<1.0> : tensor<3x2xf32>
    %n = aten.param constant "n" = dense<1> : tensor<3x2xi64>
    %a = aten.op "mm.default"(%x, %w) : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    aten.param_update "running_w", %new : tensor<3x2xf32>
    %b = aten.op "mm.default"(%x, %u) : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %d = aten.op "mul_.Scalar"(%u, 2.0) : (tensor<3x2xf32>) -> tensor<3x2xf32>
    %c = aten.op "mm.default"(%i, %n) : (tensor<4x3xi64>, tensor<3x2xi64>) -> tensor<4x2xi64>
    func.return %a, %b, %c : tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xi64>
  }

  // A weight written in place through a view of it that the product does not read
  // (`W.t().mul_(2)`): the write reaches W's memory.
  // CHECK-LABEL: func.func @written_through_a_view(
  // CHECK:         aten.op "mm.default"(%x, %w)
  // CHECK-NOT:     linear
  func.func @written_through_a_view(%x: tensor<4x3xf32>) -> tensor<4x2xf32> {
    %w = aten.param parameter "w" = dense<1.0> : tensor<3x2xf32>
    %v = aten.op "t.default"(%w) : (tensor<3x2xf32>) -> tensor<2x3xf32>
    %d = aten.op "mul_.Scalar"(%v, 2.0) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    %a = aten.op "mm.default"(%x, %w) : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    func.return %a : tensor<4x2xf32>
  }

  // addmm with beta and alpha other than (1, 1) or (0, 1): folding them into the weight and
  // bias would round differently. A bias that is an activation, or a full (M, N) matrix.
  // CHECK-LABEL: func.func @addmm_kept(
  // CHECK:         aten.op "addmm.default"(%b, %x, %w, beta = 0.5)
  // CHECK-NEXT:    aten.op "addmm.default"(%b, %x, %w, alpha = 2.0)
  // CHECK-NEXT:    aten.op "addmm.default"(%r, %x, %w)
  // CHECK-NEXT:    aten.op "addmm.default"(%m, %x, %w)
  // CHECK-NEXT:    func.return
  func.func @addmm_kept(%x: tensor<4x3xf32>, %r: tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>) {
    %w = aten.param parameter "w" = dense<1.0> : tensor<3x2xf32>
    %b = aten.param parameter "b" = dense<1.0> : tensor<2xf32>
    %m = aten.param parameter "m" = dense<1.0> : tensor<4x2xf32>
    %y1 = aten.op "addmm.default"(%b, %x, %w, beta = 0.5) : (tensor<2xf32>, tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %y2 = aten.op "addmm.default"(%b, %x, %w, alpha = 2.0) : (tensor<2xf32>, tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %y3 = aten.op "addmm.default"(%r, %x, %w) : (tensor<4x2xf32>, tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %y4 = aten.op "addmm.default"(%m, %x, %w) : (tensor<4x2xf32>, tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    func.return %y1, %y2, %y3, %y4 : tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>
  }

  // Adds that are not a bias: with alpha, of an activation, of a full matrix, after a linear
  // that has a bias already, of a linear result read elsewhere too. The linears are made.
  // CHECK-LABEL: func.func @adds_kept(
  // CHECK-COUNT-5: aten.op "add.Tensor"
  // CHECK:         func.return
  func.func @adds_kept(%x: tensor<4x3xf32>, %r: tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>) {
    %w = aten.param parameter "w" = dense<1.0> : tensor<3x2xf32>
    %b = aten.param parameter "b" = dense<1.0> : tensor<2xf32>
    %m = aten.param parameter "m" = dense<1.0> : tensor<4x2xf32>
    %y1 = aten.op "mm.default"(%x, %w) : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %a1 = aten.op "add.Tensor"(%y1, %b, alpha = 2) : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
    %y2 = aten.op "mm.default"(%x, %w) : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %a2 = aten.op "add.Tensor"(%y2, %r) : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x2xf32>
    %y3 = aten.op "mm.default"(%x, %w) : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %a3 = aten.op "add.Tensor"(%y3, %m) : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x2xf32>
    %y4 = aten.op "addmm.default"(%b, %x, %w) : (tensor<2xf32>, tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %a4 = aten.op "add.Tensor"(%y4, %b) : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
    %y5 = aten.op "mm.default"(%x, %w) : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %a5 = aten.op "add.Tensor"(%y5, %b) : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
    func.return %a1, %a2, %a3, %a4, %a5, %y5 : tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x2xf32>
  }

  // A tied weight (an embedding table also read as an (in, out) projection) gets its
  // transposed copy for inference; with keep-tied (QAT), where a copy would train apart from
  // the table, the layer stays.
  // CHECK-LABEL: func.func @tied(
  // CHECK:         aten.op "embedding.default"(%e, %ids)
  // CHECK:         aten.op "linear.default"(%h, %{{.*}})
  // TIED-LABEL:  func.func @tied(
  // TIED:          aten.op "embedding.default"(%e, %ids)
  // TIED:          aten.op "matmul.default"(%h, %e)
  func.func @tied(%ids: tensor<2x3xi64>, %h: tensor<2x3x4xf32>) -> (tensor<2x3x5xf32>, tensor<2x3x5xf32>) {
    %e = aten.param parameter "table" = dense<1.0> : tensor<4x5xf32>
    %x = aten.op "embedding.default"(%e, %ids) : (tensor<4x5xf32>, tensor<2x3xi64>) -> tensor<2x3x5xf32>
    %y = aten.op "matmul.default"(%h, %e) : (tensor<2x3x4xf32>, tensor<4x5xf32>) -> tensor<2x3x5xf32>
    func.return %x, %y : tensor<2x3x5xf32>, tensor<2x3x5xf32>
  }
}
