"""Gilmer et al. 2017, Neural Message Passing for Quantum Chemistry: enn-s2s on molecules."""
