"""The lstm paper's experiments, one module each; ``papers/lstm/experiment.py`` registers
them."""
