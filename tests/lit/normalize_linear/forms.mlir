// RUN: qir-opt %s -p normalize-linear | filecheck %s
// RUN: qir-opt %s -p normalize-linear --timing 2>&1 | filecheck %s --check-prefix=COUNT

// COUNT: normalize-linear  (addmm: 4, bias-add: 1, linear: 1, matmul: 4, mm: 1, transposed-weight: 5)

// Every form torch.export gives a linear layer with a constant weight becomes `linear.default`
// with an (out, in) weight. `W` below is (in, out) = 3x2: `x @ W` needs its transpose, a new
// parameter `W_t`; `P` is (out, in) = 2x3, read through a transposing view: it is the weight.

builtin.module attributes {qir.stage = "float"} {
  // addmm(b, x, W): linear(x, W_t, b); the provenance stays.
  // CHECK-LABEL: func.func @addmm(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "fc.weight_t" : tensor<2x3xf32>
  // CHECK-NEXT:    %[[B:.*]] = aten.param parameter "fc.bias"
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[W]], %[[B]]) {module = "fc", module_type = "transformers.pytorch_utils.Conv1D"} : (tensor<4x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @addmm(%x: tensor<4x3xf32>) -> tensor<4x2xf32> {
    %w = aten.param parameter "fc.weight" = dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]> : tensor<3x2xf32>
    %b = aten.param parameter "fc.bias" = dense<[0.5, -0.5]> : tensor<2xf32>
    %y = aten.op "addmm.default"(%b, %x, %w) {module = "fc", module_type = "transformers.pytorch_utils.Conv1D"} : (tensor<2xf32>, tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    func.return %y : tensor<4x2xf32>
  }

  // mm(x, W) and addmm(b, x, W) sharing one weight: one transposed copy.
  // CHECK-LABEL: func.func @mm_shared(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "W_t" : tensor<2x3xf32>
  // CHECK-NEXT:    %[[B:.*]] = aten.param parameter "b"
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[W]]) : (tensor<4x3xf32>, tensor<2x3xf32>) -> tensor<4x2xf32>
  // CHECK-NEXT:    %[[Z:.*]] = aten.op "linear.default"(%x, %[[W]], %[[B]]) : (tensor<4x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  // CHECK-NEXT:    func.return %[[Y]], %[[Z]]
  func.func @mm_shared(%x: tensor<4x3xf32>) -> (tensor<4x2xf32>, tensor<4x2xf32>) {
    %w = aten.param parameter "W" = dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]> : tensor<3x2xf32>
    %b = aten.param parameter "b" = dense<[0.5, -0.5]> : tensor<2xf32>
    %y = aten.op "mm.default"(%x, %w) : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %z = aten.op "addmm.default"(%b, %x, %w) : (tensor<2xf32>, tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    func.return %y, %z : tensor<4x2xf32>, tensor<4x2xf32>
  }

  // `x @ P.t()` of a 3-D x, `x @ P.transpose(0, 1)`, `x @ P.permute(1, 0)`: P is the weight,
  // no copy; the views go.
  // CHECK-LABEL: func.func @matmul_views(
  // CHECK-NEXT:    %[[P:.*]] = aten.param parameter "P" = dense<{{.*}}> : tensor<2x3xf32>
  // CHECK-NEXT:    aten.op "linear.default"(%x, %[[P]]) : (tensor<5x4x3xf32>, tensor<2x3xf32>) -> tensor<5x4x2xf32>
  // CHECK-NEXT:    aten.op "linear.default"(%x, %[[P]]) : (tensor<5x4x3xf32>, tensor<2x3xf32>) -> tensor<5x4x2xf32>
  // CHECK-NEXT:    aten.op "linear.default"(%x, %[[P]]) : (tensor<5x4x3xf32>, tensor<2x3xf32>) -> tensor<5x4x2xf32>
  // CHECK-NEXT:    func.return
  func.func @matmul_views(%x: tensor<5x4x3xf32>) -> (tensor<5x4x2xf32>, tensor<5x4x2xf32>, tensor<5x4x2xf32>) {
    %p = aten.param parameter "P" = dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>
    %t = aten.op "t.default"(%p) : (tensor<2x3xf32>) -> tensor<3x2xf32>
    %u = aten.op "transpose.int"(%p, 0, 1) : (tensor<2x3xf32>) -> tensor<3x2xf32>
    %v = aten.op "permute.default"(%p, [1, 0]) : (tensor<2x3xf32>) -> tensor<3x2xf32>
    %a = aten.op "matmul.default"(%x, %t) : (tensor<5x4x3xf32>, tensor<3x2xf32>) -> tensor<5x4x2xf32>
    %b = aten.op "matmul.default"(%x, %u) : (tensor<5x4x3xf32>, tensor<3x2xf32>) -> tensor<5x4x2xf32>
    %c = aten.op "matmul.default"(%x, %v) : (tensor<5x4x3xf32>, tensor<3x2xf32>) -> tensor<5x4x2xf32>
    func.return %a, %b, %c : tensor<5x4x2xf32>, tensor<5x4x2xf32>, tensor<5x4x2xf32>
  }

  // `x @ W + b`: the add becomes the linear's bias.
  // CHECK-LABEL: func.func @matmul_add(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "proj_t" : tensor<2x3xf32>
  // CHECK-NEXT:    %[[B:.*]] = aten.param parameter "bias"
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[W]], %[[B]]) {module = "m"} : (tensor<5x4x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<5x4x2xf32>
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @matmul_add(%x: tensor<5x4x3xf32>) -> tensor<5x4x2xf32> {
    %w = aten.param parameter "proj" = dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]> : tensor<3x2xf32>
    %b = aten.param parameter "bias" = dense<[0.5, -0.5]> : tensor<2xf32>
    %m = aten.op "matmul.default"(%x, %w) {module = "m"} : (tensor<5x4x3xf32>, tensor<3x2xf32>) -> tensor<5x4x2xf32>
    %y = aten.op "add.Tensor"(%b, %m) {module = "m"} : (tensor<2xf32>, tensor<5x4x2xf32>) -> tensor<5x4x2xf32>
    func.return %y : tensor<5x4x2xf32>
  }

  // addmm with beta = 0 ignores its first operand; a (1, N) bias is reshaped to (N).
  // CHECK-LABEL: func.func @addmm_beta_zero_and_row_bias(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "Q_t" : tensor<2x3xf32>
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[W]]) : (tensor<4x3xf32>, tensor<2x3xf32>) -> tensor<4x2xf32>
  // CHECK-NEXT:    %[[R:.*]] = aten.param parameter "row_1d" : tensor<2xf32>
  // CHECK-NEXT:    %[[Z:.*]] = aten.op "linear.default"(%x, %[[W]], %[[R]])
  // CHECK-NEXT:    func.return %[[Y]], %[[Z]]
  func.func @addmm_beta_zero_and_row_bias(%x: tensor<4x3xf32>, %junk: tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<4x2xf32>) {
    %w = aten.param parameter "Q" = dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]> : tensor<3x2xf32>
    %r = aten.param parameter "row" = dense<[[0.5, -0.5]]> : tensor<1x2xf32>
    %y = aten.op "addmm.default"(%junk, %x, %w, beta = 0, alpha = 1) : (tensor<4x2xf32>, tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %z = aten.op "addmm.default"(%r, %x, %w, beta = 1.0) : (tensor<1x2xf32>, tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    func.return %y, %z : tensor<4x2xf32>, tensor<4x2xf32>
  }

  // `F.linear(x, W.t())`: a linear whose weight is a transposing view of an (in, out) constant.
  // CHECK-LABEL: func.func @linear_of_view(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "V_t" : tensor<2x3xf32>
  // CHECK-NEXT:    aten.op "linear.default"(%x, %[[W]], %b) : (tensor<4x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  func.func @linear_of_view(%x: tensor<4x3xf32>, %b: tensor<2xf32>) -> tensor<4x2xf32> {
    %w = aten.param parameter "V" = dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]> : tensor<3x2xf32>
    %t = aten.op "t.default"(%w) : (tensor<3x2xf32>) -> tensor<2x3xf32>
    %y = aten.op "linear.default"(%x, %t, %b) : (tensor<4x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<4x2xf32>
    func.return %y : tensor<4x2xf32>
  }
}
