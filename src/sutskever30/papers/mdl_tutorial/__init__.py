"""mdl_tutorial: A Tutorial Introduction to the Minimum Description Length Principle."""
