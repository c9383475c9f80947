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

// -----

// Operand references: a value that is never defined is reported where it is used.

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{use of undeclared SSA value %y}}
    %0 = aten.op "relu.default"(%y) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{2 operands but the type lists 1}}
    %0 = aten.op "add.Tensor"(%x, %x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{operand is used with type tensor<3xf32>, but has been previously used or defined with type tensor<2xf32>}}
    %0 = aten.op "relu.default"(%x) : (tensor<3xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    %0 = aten.op "relu.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    // expected-error @+1 {{tried to access element 1}}
    func.return %0#1 : tensor<2xf32>
  }
}

// -----

// Argument kinds and order.

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{positional argument after keyword argument}}
    %0 = aten.op "add.Tensor"(alpha = 2, %x, %x) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{argument 'other' given twice}}
    %0 = aten.op "add.Tensor"(%x, %x, other = %x) : (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error-re @+1 {{argument 'size' expects int[], got {{.*}}operand}}
    %0 = aten.op "view.default"(%x, [%x, -1]) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{'py::operator.nosuch': not a known Python operator}}
    %0 = aten.op "py::operator.nosuch"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

// Result count: more names than the type gives.

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{Operation has 1 results, but was given 2 to bind}}
    %0:2 = aten.op "relu.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0#0 : tensor<2xf32>
  }
}

// -----

// Weights: a named parameter needs its tensor (none is beside this file).

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{aten.param 'missing.weight': no such tensor in the weights}}
    %w = aten.param parameter "missing.weight" : tensor<2xf32>
    func.return %x : tensor<2xf32>
  }
}

// -----

// An unknown stage.

// expected-error @+1 {{qir.stage must be one of}}
builtin.module attributes {qir.stage = "calibrated"} {
}
