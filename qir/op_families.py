"""Families of ATen operators that passes and quantizers recognise by name.

One list, so that fold-bn, the quantizers and the lowerings agree on what a
"conv" is."""

CONV = {"conv1d", "conv2d", "conv3d"}
CONV_TRANSPOSE = {"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
GENERIC_CONV = {"convolution", "_convolution"}
LINEAR = {"linear"}
MATMUL = {"matmul", "bmm", "mm"}
RELU_LIKE = {"relu", "relu_", "relu6", "hardtanh", "hardtanh_"}
HARDSWISH = {"hardswish", "hardswish_"}
POOLING = {"max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d"}
TRAINING_FLAG_BATCH_NORMS = {"batch_norm", "native_batch_norm", "_native_batch_norm_legit"}
BATCH_NORMS = TRAINING_FLAG_BATCH_NORMS | {"_native_batch_norm_legit_no_training"}
