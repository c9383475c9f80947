// RUN: qir-opt %s | qir-opt | filecheck %s

// Every kind of argument an exported call can carry survives print → parse → print.

builtin.module attributes {qir.stage = "float"} {
  func.func @forward(%x: tensor<?x3x8x8xf32>, %ids: tensor<2x5xi64>) -> (tensor<?x4xf32>, tensor<?x4x6x6xf32>) attributes {qir.in_spec = "((*, *), {})", qir.out_spec = "(*, *)"} {
    %w = aten.param parameter "c.weight" = dense<0.5> : tensor<4x3x3x3xf32>
    %b = aten.param constant "c.bias" = dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
    %n = aten.op "sym_size.int"(%x, 0) : (tensor<?x3x8x8xf32>) -> i64
    %y = aten.op "conv2d.default"(%x, %w, none, [1, 1], [0, 0], [1, 1], 1) {module = "c", module_type = "torch.nn.modules.conv.Conv2d"} : (tensor<?x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<?x4x6x6xf32>
    %m = aten.op "mean.dim"(%y, [2, 3]) : (tensor<?x4x6x6xf32>) -> tensor<?x4xf32>
    %h = aten.op "to.dtype"(%m, #aten.dtype<float16>) : (tensor<?x4xf32>) -> tensor<?x4xf16>
    %e = aten.op "add.Tensor"(%m, %b, alpha = 1.0e-07) : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
    %v = aten.op "view.default"(%e, [%n, -1]) : (tensor<?x4xf32>, i64) -> tensor<?x4xf32>
    %s:2 = aten.op "split.Tensor"(%y, 2, 1) : (tensor<?x4x6x6xf32>) -> (tensor<?x2x6x6xf32>, tensor<?x2x6x6xf32>)
    %c = aten.op "cat.default"([%s#0, %s#1], 1) : (tensor<?x2x6x6xf32>, tensor<?x2x6x6xf32>) -> tensor<?x4x6x6xf32>
    %k = aten.op "py::operator.mul"(%n, 4) : (i64) -> i64
    %f = aten.op "masked_fill.Scalar"(%m, %m, 0xFFF0000000000000 : f64) : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
    %z = aten.op "zeros.default"([2, 3], dtype = #aten.dtype<float32>, layout = #aten.layout<strided>, device = #aten.device<cpu>, pin_memory = false) : () -> tensor<2x3xf32>
    %cl = aten.op "clone.default"(%y, memory_format = #aten.memory_format<channels_last>) : (tensor<?x4x6x6xf32>) -> tensor<?x4x6x6xf32>
    func.return %v, %c : tensor<?x4xf32>, tensor<?x4x6x6xf32>
  }
}

// CHECK:      %w = aten.param parameter "c.weight" = dense<5.000000e-01> : tensor<4x3x3x3xf32>
// CHECK:      %n = aten.op "sym_size.int"(%x, 0) : (tensor<?x3x8x8xf32>) -> i64
// CHECK-NEXT: %y = aten.op "conv2d.default"(%x, %w, none, [1, 1], [0, 0], [1, 1], 1) {module = "c", module_type = "torch.nn.modules.conv.Conv2d"}
// CHECK:      aten.op "to.dtype"(%m, #aten.dtype<float16>)
// CHECK-NEXT: aten.op "add.Tensor"(%m, %b, alpha = 1.0e-07)
// CHECK-NEXT: aten.op "view.default"(%e, [%n, -1]) : (tensor<?x4xf32>, i64) -> tensor<?x4xf32>
// CHECK-NEXT: %s, %s_1 = aten.op "split.Tensor"(%y, 2, 1)
// CHECK-NEXT: aten.op "cat.default"([%s, %s_1], 1)
// CHECK-NEXT: aten.op "py::operator.mul"(%n, 4) : (i64) -> i64
// CHECK-NEXT: aten.op "masked_fill.Scalar"(%m, %m, 0xfff0000000000000 : f64)
// CHECK-NEXT: aten.op "zeros.default"([2, 3], dtype = #aten.dtype<float32>, layout = #aten.layout<strided>, device = #aten.device<cpu>, pin_memory = false) : () -> tensor<2x3xf32>
// CHECK-NEXT: aten.op "clone.default"(%y, memory_format = #aten.memory_format<channels_last>)
