"""relational_rnn: Santoro et al. 2018, the relational memory core on the N-th farthest task."""
