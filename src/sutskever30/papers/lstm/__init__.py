"""lstm: Understanding LSTM Networks."""
