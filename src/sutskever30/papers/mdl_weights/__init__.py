"""mdl_weights: Keeping Neural Networks Simple by Minimizing the Description Length of the
Weights (Hinton & van Camp 1993)."""
