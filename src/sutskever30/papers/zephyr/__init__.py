"""Zephyr (Tunstall et al. 2023): dSFT, AI feedback and dDPO of a small student."""
