"""bahdanau_attention: Neural Machine Translation by Jointly Learning to Align and Translate."""
