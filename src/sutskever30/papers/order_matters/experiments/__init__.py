"""The order_matters experiments, one module each; ``experiment.py`` registers them."""
