// RUN: qir-opt %s -p normalize-linear | filecheck %s
// RUN: qir-opt %s -p normalize-linear --timing 2>&1 | filecheck %s --check-prefix=COUNT

// COUNT: normalize-linear  (bmm: 2, transposed-weight: 1)

// bmm(x, expand(W, [B, K, N])): every batch multiplied by the same constant matrix, the form
// torch's decompositions give a 3-D matmul by a weight (nn.LSTM's and nn.GRU's input projection
// of every time step after run_decompositions()): linear(x, W').

builtin.module attributes {qir.stage = "float"} {
  // The LSTM form: the (out, in) parameter read through permute, expanded, viewed to its own
  // shape: the parameter itself is the weight; the views are erased.
  // CHECK-LABEL: func.func @lstm_input_projection(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "rnn.weight_ih_l0"{{.*}} : tensor<8x3xf32>
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[W]]) {module = "rnn"} : (tensor<5x2x3xf32>, tensor<8x3xf32>) -> tensor<5x2x8xf32>
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @lstm_input_projection(%x: tensor<5x2x3xf32>) -> tensor<5x2x8xf32> {
    %w = aten.param parameter "rnn.weight_ih_l0" = dense<0.5> : tensor<8x3xf32>
    %wt = aten.op "permute.default"(%w, [1, 0]) {module = "rnn"} : (tensor<8x3xf32>) -> tensor<3x8xf32>
    %e = aten.op "expand.default"(%wt, [5, 3, 8]) {module = "rnn"} : (tensor<3x8xf32>) -> tensor<5x3x8xf32>
    %v = aten.op "view.default"(%e, [5, 3, 8]) {module = "rnn"} : (tensor<5x3x8xf32>) -> tensor<5x3x8xf32>
    %y = aten.op "bmm.default"(%x, %v) {module = "rnn"} : (tensor<5x2x3xf32>, tensor<5x3x8xf32>) -> tensor<5x2x8xf32>
    func.return %y : tensor<5x2x8xf32>
  }

  // An (in, out) parameter expanded as it is: its transposed copy is the weight.
  // CHECK-LABEL: func.func @in_out(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "W_t"{{.*}} : tensor<2x3xf32>
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[W]]) : (tensor<4x5x3xf32>, tensor<2x3xf32>) -> tensor<4x5x2xf32>
  func.func @in_out(%x: tensor<4x5x3xf32>) -> tensor<4x5x2xf32> {
    %w = aten.param parameter "W" = dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]> : tensor<3x2xf32>
    %e = aten.op "expand.default"(%w, [4, 3, 2]) : (tensor<3x2xf32>) -> tensor<4x3x2xf32>
    %y = aten.op "bmm.default"(%x, %e) : (tensor<4x5x3xf32>, tensor<4x3x2xf32>) -> tensor<4x5x2xf32>
    func.return %y : tensor<4x5x2xf32>
  }

  // Left alone: a product of two activations, a 3-D constant (a matrix per batch), a view that
  // changes the expanded shape.
  // CHECK-LABEL: func.func @left_alone(
  // CHECK-COUNT-3: aten.op "bmm.default"
  // CHECK-NOT:     linear.default
  func.func @left_alone(%x: tensor<4x5x3xf32>, %m: tensor<3x2xf32>) -> (tensor<4x5x2xf32>, tensor<4x5x2xf32>, tensor<2x5x2xf32>) {
    %e = aten.op "expand.default"(%m, [4, 3, 2]) : (tensor<3x2xf32>) -> tensor<4x3x2xf32>
    %a = aten.op "bmm.default"(%x, %e) : (tensor<4x5x3xf32>, tensor<4x3x2xf32>) -> tensor<4x5x2xf32>
    %p = aten.param parameter "P" = dense<1.0> : tensor<4x3x2xf32>
    %b = aten.op "bmm.default"(%x, %p) : (tensor<4x5x3xf32>, tensor<4x3x2xf32>) -> tensor<4x5x2xf32>
    %w = aten.param parameter "Q" = dense<1.0> : tensor<6x2xf32>
    %q = aten.op "expand.default"(%w, [1, 6, 2]) : (tensor<6x2xf32>) -> tensor<1x6x2xf32>
    %r = aten.op "view.default"(%q, [2, 3, 2]) : (tensor<1x6x2xf32>) -> tensor<2x3x2xf32>
    %xs = aten.op "slice.Tensor"(%x, 0, 0, 2) : (tensor<4x5x3xf32>) -> tensor<2x5x3xf32>
    %c = aten.op "bmm.default"(%xs, %r) : (tensor<2x5x3xf32>, tensor<2x3x2xf32>) -> tensor<2x5x2xf32>
    func.return %a, %b, %c : tensor<4x5x2xf32>, tensor<4x5x2xf32>, tensor<2x5x2xf32>
  }
}
