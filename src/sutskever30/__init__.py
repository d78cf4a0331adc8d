"""sutskever30: Ilya Sutskever's reading list, implemented in PyTorch with measured claims."""

__version__ = "0.1.0"
