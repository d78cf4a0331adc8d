"""The pointer_networks experiments, one module each; ``experiment.py`` registers them."""
