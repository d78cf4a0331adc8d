"""The identity_mappings experiments, one module each; ``experiment.py`` registers them."""
