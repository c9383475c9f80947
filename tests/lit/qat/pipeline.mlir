// RUN: qir-opt %s -p 'set-training{mode=module},annotate{quantizer=x86-qat target=x86-avx512-vnni},propagate-annotations,insert-observers{fake-quant=true},simulate-bn' | filecheck %s

// The QAT passes on a conv + batch norm + relu and a dropout exported in training mode.

builtin.module attributes {qir.stage = "float"} {
  func.func @forward(%x: tensor<2x1x4x4xf32>) -> tensor<2x2x2x2xf32> {
    %w = aten.param parameter "conv.weight" = dense<0.5> : tensor<2x1x3x3xf32>
    %b = aten.param parameter "conv.bias" = dense<0.25> : tensor<2xf32>
    %g = aten.param parameter "bn.weight" = dense<2.0> : tensor<2xf32>
    %beta = aten.param parameter "bn.bias" = dense<0.5> : tensor<2xf32>
    %m = aten.param buffer "bn.running_mean" = dense<0.0> : tensor<2xf32>
    %v = aten.param buffer "bn.running_var" = dense<1.0> : tensor<2xf32>
    %c = aten.op "conv2d.default"(%x, %w, %b) : (tensor<2x1x4x4xf32>, tensor<2x1x3x3xf32>, tensor<2xf32>) -> tensor<2x2x2x2xf32>
    %y = aten.op "batch_norm.default"(%c, %g, %beta, %m, %v, true, 0.1, 1.0e-05, false) : (tensor<2x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x2x2x2xf32>
    %r = aten.op "relu.default"(%y) : (tensor<2x2x2x2xf32>) -> tensor<2x2x2x2xf32>
    %d = aten.op "dropout.default"(%r, 0.1, true) : (tensor<2x2x2x2xf32>) -> tensor<2x2x2x2xf32>
    func.return %d : tensor<2x2x2x2xf32>
  }
}

// CHECK:      builtin.module attributes {qir.stage = "observed", qir.target = "x86-avx512-vnni"}
// CHECK:      %[[X:.*]] = obs.fake_quant %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, moving_minmax, group 0>}
// The factor gamma / sqrt(running_var + eps) scales the weight before its fake quantization:
// CHECK-NEXT: %[[VE:.*]] = aten.op "add.Tensor"(%v, 1.0e-05)
// CHECK-NEXT: %[[SD:.*]] = aten.op "sqrt.default"(%[[VE]])
// CHECK-NEXT: %[[F:.*]] = aten.op "div.Tensor"(%g, %[[SD]])
// CHECK-NEXT: %[[FW:.*]] = aten.op "reshape.default"(%[[F]], [-1, 1, 1, 1]) : (tensor<2xf32>) -> tensor<2x1x1x1xf32>
// CHECK-NEXT: %[[WS:.*]] = aten.op "mul.Tensor"(%w, %[[FW]])
// The weight's statistics are taken anew at each forward: none are printed.
// CHECK-NEXT: %[[WQ:.*]] = obs.fake_quant %[[WS]] {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>} : tensor<2x1x3x3xf32>
// The conv loses its bias; its output is divided by the factor and the bias added back:
// CHECK-NEXT: %[[C:.*]] = aten.op "conv2d.default"(%[[X]], %[[WQ]], none)
// CHECK-NEXT: %[[FO:.*]] = aten.op "reshape.default"(%[[F]], [1, -1, 1, 1]) : (tensor<2xf32>) -> tensor<1x2x1x1xf32>
// CHECK-NEXT: %[[D:.*]] = aten.op "div.Tensor"(%[[C]], %[[FO]])
// CHECK-NEXT: %[[BO:.*]] = aten.op "reshape.default"(%b, [1, -1, 1, 1])
// CHECK-NEXT: %[[U:.*]] = aten.op "add.Tensor"(%[[D]], %[[BO]])
// The batch norm and the dropout follow the module's mode:
// CHECK-NEXT: aten.op "batch_norm.default"(%[[U]], %g, %beta, %m, %v, #aten.training<batch_norm>, 0.1, 1.0e-05, false)
// CHECK-NEXT: %[[R:.*]] = aten.op "relu.default"
// CHECK-NEXT: aten.op "dropout.default"(%[[R]], 0.1, #aten.training<module>)
