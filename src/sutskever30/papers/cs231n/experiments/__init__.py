"""The experiments of ``cs231n``, one module each: gradient checks, kNN, and the nets."""
