"""The Transformer paper's experiments, one module each."""
