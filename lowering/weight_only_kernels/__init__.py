"""Kernels for weight-only linears and embedding tables, shared by backends (`kernels`)."""
