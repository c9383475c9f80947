// RUN: qir-opt %s -p 'set-training{mode=module}' | filecheck %s --check-prefix=MODULE
// RUN: qir-opt %s -p 'set-training{mode=module},set-training{mode=eval}' | filecheck %s --check-prefix=EVAL
// RUN: qir-opt %s -p 'set-training{mode=train}' | filecheck %s --check-prefix=TRAIN
// RUN: not qir-opt %s -p 'set-training{mode=sometimes}' 2>&1 | filecheck %s --check-prefix=BAD

// The arguments the schema names `train` / `training` follow the module's mode, or become constants.

builtin.module {
  func.func @forward(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
    %g = aten.param parameter "bn.weight" = dense<1.0> : tensor<3xf32>
    %m = aten.param buffer "bn.running_mean" = dense<0.0> : tensor<3xf32>
    %v = aten.param buffer "bn.running_var" = dense<1.0> : tensor<3xf32>
    %n = aten.param buffer "bn.num_batches_tracked" = dense<0> : tensor<i64>
    %a = aten.op "add_.Tensor"(%n, 1) : (tensor<i64>) -> tensor<i64>
    %d = aten.op "dropout.default"(%x, 0.5, true) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    %f = aten.op "feature_alpha_dropout.default"(%d, 0.5, false) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    %y = aten.op "batch_norm.default"(%f, %g, none, %m, %v, true, 0.1, 1.0e-05, false) : (tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %r = aten.op "relu.default"(%y) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    func.return %r : tensor<2x3xf32>
  }
}

// MODULE:      aten.op "add_.Tensor"(%n, 1)
// MODULE:      aten.op "dropout.default"(%x, 0.5, #aten.training<module>)
// MODULE-NEXT: aten.op "feature_alpha_dropout.default"(%d, 0.5, #aten.training<module>)
// MODULE-NEXT: aten.op "batch_norm.default"(%f, %g, none, %m, %v, #aten.training<batch_norm>, 0.1, 1.0e-05, false)
// MODULE-NEXT: aten.op "relu.default"(%y)

// The batch counter, which nn.BatchNorm increments only while training, goes:
// EVAL-NOT:  add_
// EVAL:      aten.op "dropout.default"(%x, 0.5, false)
// EVAL-NEXT: aten.op "feature_alpha_dropout.default"(%d, 0.5, false)
// EVAL-NEXT: aten.op "batch_norm.default"(%f, %g, none, %m, %v, false, 0.1, 1.0e-05, false)

// TRAIN:      aten.op "add_.Tensor"(%n, 1)
// TRAIN:      aten.op "dropout.default"(%x, 0.5, true)
// TRAIN-NEXT: aten.op "feature_alpha_dropout.default"(%d, 0.5, true)
// TRAIN-NEXT: aten.op "batch_norm.default"(%f, %g, none, %m, %v, true, 0.1, 1.0e-05, false)

// BAD: unknown mode 'sometimes'
