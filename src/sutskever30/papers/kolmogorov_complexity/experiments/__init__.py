"""The kolmogorov_complexity experiments, one module each; ``experiment.py`` registers them."""
