"""The GPipe experiments, one module each: gradient equality, the bubble, activation memory,
and the two-process pipeline."""
