"""The double_descent experiments, one module each; ``experiment.py`` registers them."""
