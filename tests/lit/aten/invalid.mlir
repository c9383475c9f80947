// RUN: qir-opt %s --split-input-file --verify-diagnostics

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{torch has no such operator overload}}
    %0 = aten.op "nosuch.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{missing argument 'other'}}
    %0 = aten.op "add.Tensor"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{argument 'dim' expects int[]?, got "one"}}
    %0 = aten.op "mean.dim"(%x, "one") : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{2 results, the schema returns 1}}
    %0:2 = aten.op "relu.default"(%x) : (tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>)
    func.return %0#0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{at most 1}}
    %0 = aten.op "relu.default"(%x, 1, 2) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{no argument named 'bogus'}}
    %0 = aten.op "relu.default"(%x, bogus = 1) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{expected one of parameter, buffer, constant}}
    %w = aten.param weights "w" : tensor<2xf32>
    func.return %x : tensor<2xf32>
  }
}
