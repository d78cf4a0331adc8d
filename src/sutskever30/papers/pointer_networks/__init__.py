"""Pointer Networks (Vinyals, Fortunato, Jaitly 2015): attention over the input as output."""
