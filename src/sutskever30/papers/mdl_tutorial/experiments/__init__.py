"""The mdl_tutorial paper's experiments, one module each; ``papers/mdl_tutorial/experiment.py``
registers them."""
