"""Kolmogorov complexity: compressor bounds, the counting argument, the coding theorem
method on small Turing machines, block decomposition, and clustering by compression."""
