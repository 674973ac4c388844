// Host trainer: tensors, GEMM, layers (see Tensor.swift, GEMM/, Layers/).
