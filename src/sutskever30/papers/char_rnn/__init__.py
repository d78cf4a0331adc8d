"""char_rnn: The Unreasonable Effectiveness of Recurrent Neural Networks."""
