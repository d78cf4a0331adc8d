"""complexodynamics: The First Law of Complexodynamics (Aaronson 2011)."""
