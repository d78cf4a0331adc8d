"""The alexnet experiments, one module each; ``papers/alexnet/experiment.py`` registers them."""
