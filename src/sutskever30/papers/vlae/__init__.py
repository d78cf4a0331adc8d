"""vlae: Variational Lossy Autoencoder."""
