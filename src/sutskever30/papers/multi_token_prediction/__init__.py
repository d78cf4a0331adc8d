"""Gloeckle et al. 2024, "Better & Faster Large Language Models via Multi-token Prediction"."""
