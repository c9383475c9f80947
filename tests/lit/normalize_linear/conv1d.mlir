// RUN: qir-opt %s -p normalize-linear | filecheck %s
// RUN: qir-opt %s -p normalize-linear --timing 2>&1 | filecheck %s --check-prefix=COUNT

// COUNT: normalize-linear  (addmm: 6, leading-dims: 3, mm: 1, transposed-weight: 4)

// Hugging Face's Conv1D (GPT-2's c_attn, c_proj, c_fc): `view(addmm(b, view(x, [-1, nx]), w), size_out)`
// with w laid out (in, out). The views only flatten and unflatten x's leading dimensions: the
// layer is `linear(x, w.t(), b)`, of x's own rank, as an nn.Linear exports.

builtin.module attributes {qir.stage = "float"} {
  // CHECK-LABEL: func.func @conv1d(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "h.0.attn.c_attn.weight_t" : tensor<6x4xf32>
  // CHECK-NEXT:    %[[B:.*]] = aten.param parameter "h.0.attn.c_attn.bias"
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[W]], %[[B]]) {module = "h.0.attn.c_attn", module_type = "transformers.pytorch_utils.Conv1D"} : (tensor<2x3x4xf32>, tensor<6x4xf32>, tensor<6xf32>) -> tensor<2x3x6xf32>
  // CHECK-NEXT:    func.return %[[Y]] : tensor<2x3x6xf32>
  func.func @conv1d(%x: tensor<2x3x4xf32>) -> tensor<2x3x6xf32> {
    %w = aten.param parameter "h.0.attn.c_attn.weight" = dense<0.25> : tensor<4x6xf32>
    %b = aten.param parameter "h.0.attn.c_attn.bias" = dense<0.5> : tensor<6xf32>
    %v = aten.op "view.default"(%x, [-1, 4]) {module = "h.0.attn.c_attn", module_type = "transformers.pytorch_utils.Conv1D"} : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
    %a = aten.op "addmm.default"(%b, %v, %w) {module = "h.0.attn.c_attn", module_type = "transformers.pytorch_utils.Conv1D"} : (tensor<6xf32>, tensor<6x4xf32>, tensor<4x6xf32>) -> tensor<6x6xf32>
    %y = aten.op "view.default"(%a, [2, 3, 6]) {module = "h.0.attn.c_attn", module_type = "transformers.pytorch_utils.Conv1D"} : (tensor<6x6xf32>) -> tensor<2x3x6xf32>
    func.return %y : tensor<2x3x6xf32>
  }

  // Dynamic batch and sequence: the unflattening view takes `sym_size(x, i)`; those go too.
  // CHECK-LABEL: func.func @dynamic(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "c.weight_t" : tensor<6x4xf32>
  // CHECK-NEXT:    %[[B:.*]] = aten.param parameter "c.bias"
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[W]], %[[B]]) {module = "c"} : (tensor<?x?x4xf32>, tensor<6x4xf32>, tensor<6xf32>) -> tensor<?x?x6xf32>
  // CHECK-NEXT:    func.return %[[Y]] : tensor<?x?x6xf32>
  func.func @dynamic(%x: tensor<?x?x4xf32>) -> tensor<?x?x6xf32> {
    %w = aten.param parameter "c.weight" = dense<0.25> : tensor<4x6xf32>
    %b = aten.param parameter "c.bias" = dense<0.5> : tensor<6xf32>
    %s0 = aten.op "sym_size.int"(%x, 0) : (tensor<?x?x4xf32>) -> i64
    %s1 = aten.op "sym_size.int"(%x, 1) : (tensor<?x?x4xf32>) -> i64
    %v = aten.op "view.default"(%x, [-1, 4]) {module = "c"} : (tensor<?x?x4xf32>) -> tensor<?x4xf32>
    %a = aten.op "addmm.default"(%b, %v, %w) {module = "c"} : (tensor<6xf32>, tensor<?x4xf32>, tensor<4x6xf32>) -> tensor<?x6xf32>
    %y = aten.op "view.default"(%a, [%s0, %s1, 6]) {module = "c"} : (tensor<?x6xf32>, i64, i64) -> tensor<?x?x6xf32>
    func.return %y : tensor<?x?x6xf32>
  }

  // `reshape` and `_unsafe_view` flatten too, around an `mm`.
  // CHECK-LABEL: func.func @reshape_mm(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "m.weight_t" : tensor<6x4xf32>
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[W]]) : (tensor<2x5x3x4xf32>, tensor<6x4xf32>) -> tensor<2x5x3x6xf32>
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @reshape_mm(%x: tensor<2x5x3x4xf32>) -> tensor<2x5x3x6xf32> {
    %w = aten.param parameter "m.weight" = dense<0.25> : tensor<4x6xf32>
    %v = aten.op "reshape.default"(%x, [30, 4]) : (tensor<2x5x3x4xf32>) -> tensor<30x4xf32>
    %a = aten.op "mm.default"(%v, %w) : (tensor<30x4xf32>, tensor<4x6xf32>) -> tensor<30x6xf32>
    %y = aten.op "_unsafe_view.default"(%a, [2, 5, 3, 6]) : (tensor<30x6xf32>) -> tensor<2x5x3x6xf32>
    func.return %y : tensor<2x5x3x6xf32>
  }

  // Views that do not just flatten the leading dimensions stay around a 2-D linear: the first
  // view mixes the last dimension in; the second unflattens to other leading dimensions; the
  // third gives a dynamic dimension from the wrong axis; the flattened result has another use.
  // CHECK-LABEL: func.func @not_leading(
  // CHECK:         %[[V:.*]] = aten.op "view.default"(%x, [4, 4])
  // CHECK-NEXT:    %[[L:.*]] = aten.op "linear.default"(%[[V]], %{{.*}}, %{{.*}}) : (tensor<4x4xf32>, tensor<6x4xf32>, tensor<6xf32>) -> tensor<4x6xf32>
  // CHECK-NEXT:    aten.op "view.default"(%[[L]], [2, 2, 6])
  // CHECK:         %[[V2:.*]] = aten.op "view.default"(%y, [-1, 4])
  // CHECK-NEXT:    %[[L2:.*]] = aten.op "linear.default"(%[[V2]], %{{.*}}, %{{.*}}) : (tensor<6x4xf32>, tensor<6x4xf32>, tensor<6xf32>) -> tensor<6x6xf32>
  // CHECK-NEXT:    aten.op "view.default"(%[[L2]], [3, 2, 6])
  // CHECK:         aten.op "view.default"(%z, [-1, 4])
  // CHECK-NEXT:    aten.op "linear.default"
  // CHECK-NEXT:    aten.op "view.default"(%{{.*}}, [%{{.*}}, %{{.*}}, 6])
  // CHECK:         %[[V4:.*]] = aten.op "view.default"(%y, [-1, 4])
  // CHECK-NEXT:    %[[L4:.*]] = aten.op "linear.default"(%[[V4]]
  // CHECK-NEXT:    aten.op "view.default"(%[[L4]], [2, 3, 6])
  // CHECK-NEXT:    func.return
  func.func @not_leading(%x: tensor<2x8xf32>, %y: tensor<2x3x4xf32>, %z: tensor<?x?x4xf32>) -> (tensor<2x2x6xf32>, tensor<3x2x6xf32>, tensor<?x?x6xf32>, tensor<2x3x6xf32>, tensor<6x6xf32>) {
    %w = aten.param parameter "n.weight" = dense<0.25> : tensor<4x6xf32>
    %b = aten.param parameter "n.bias" = dense<0.5> : tensor<6xf32>
    %v = aten.op "view.default"(%x, [4, 4]) : (tensor<2x8xf32>) -> tensor<4x4xf32>
    %a = aten.op "addmm.default"(%b, %v, %w) : (tensor<6xf32>, tensor<4x4xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
    %r = aten.op "view.default"(%a, [2, 2, 6]) : (tensor<4x6xf32>) -> tensor<2x2x6xf32>
    %v2 = aten.op "view.default"(%y, [-1, 4]) : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
    %a2 = aten.op "addmm.default"(%b, %v2, %w) : (tensor<6xf32>, tensor<6x4xf32>, tensor<4x6xf32>) -> tensor<6x6xf32>
    %r2 = aten.op "view.default"(%a2, [3, 2, 6]) : (tensor<6x6xf32>) -> tensor<3x2x6xf32>
    %s1 = aten.op "sym_size.int"(%z, 1) : (tensor<?x?x4xf32>) -> i64
    %v3 = aten.op "view.default"(%z, [-1, 4]) : (tensor<?x?x4xf32>) -> tensor<?x4xf32>
    %a3 = aten.op "addmm.default"(%b, %v3, %w) : (tensor<6xf32>, tensor<?x4xf32>, tensor<4x6xf32>) -> tensor<?x6xf32>
    %r3 = aten.op "view.default"(%a3, [%s1, %s1, 6]) : (tensor<?x6xf32>, i64, i64) -> tensor<?x?x6xf32>
    %v4 = aten.op "view.default"(%y, [-1, 4]) : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
    %a4 = aten.op "addmm.default"(%b, %v4, %w) : (tensor<6xf32>, tensor<6x4xf32>, tensor<4x6xf32>) -> tensor<6x6xf32>
    %r4 = aten.op "view.default"(%a4, [2, 3, 6]) : (tensor<6x6xf32>) -> tensor<2x3x6xf32>
    func.return %r, %r2, %r3, %r4, %a4 : tensor<2x2x6xf32>, tensor<3x2x6xf32>, tensor<?x?x6xf32>, tensor<2x3x6xf32>, tensor<6x6xf32>
  }
}
