"""ntm: Neural Turing Machines."""
