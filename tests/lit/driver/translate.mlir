// RUN: %python -c "import torch; m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU()); torch.export.save(torch.export.export(m, (torch.randn(2, 3),)), '%t.pt2')"
// RUN: qir-translate --import-pt2 %t.pt2 -o %t.mlir
// RUN: qir-opt %t.mlir -p canonicalize | filecheck %s
// RUN: qir-translate --import-pt2 %t.pt2 2>%t.err | filecheck %s
// RUN: filecheck %s --check-prefix=WARN < %t.err
// RUN: not qir-translate --import-pt2 %s 2>&1 | filecheck %s --check-prefix=NOTPT2

// qir-translate imports a program saved by torch.export.save, after
// mlir-translate's convention; the weights go beside the output.

// CHECK:      builtin.module attributes {qir.stage = "float"}
// CHECK:      aten.param parameter "0.weight" : tensor<4x3xf32>
// CHECK:      aten.op "linear.default"
// CHECK:      aten.op "relu.default"

// WARN:       qir-translate: warning: the 2 weights the IR names are not written; use -o FILE.mlir to write them beside it

// NOTPT2:     qir-translate: error: {{.*}}translate.mlir: not a .pt2 archive
