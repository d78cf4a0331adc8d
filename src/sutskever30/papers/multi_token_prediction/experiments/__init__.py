"""One module per experiment of ``multi_token_prediction``."""
