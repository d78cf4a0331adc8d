"""Kaplan et al. 2020, Scaling Laws for Neural Language Models (arXiv:2001.08361)."""
