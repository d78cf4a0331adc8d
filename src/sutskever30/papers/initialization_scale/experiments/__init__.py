"""The initialization_scale experiments, one module each; ``experiment.py`` registers them."""
