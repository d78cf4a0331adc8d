"""coffee_automaton: Quantifying the Rise and Fall of Complexity in Closed Systems."""
