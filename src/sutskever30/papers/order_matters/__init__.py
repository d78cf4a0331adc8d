"""Vinyals, Bengio, Kudlur 2016: read-process-write for sets; input order matters."""
