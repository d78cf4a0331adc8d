"""relation_networks: A simple neural network module for relational reasoning."""
