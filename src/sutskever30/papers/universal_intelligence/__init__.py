"""Universal intelligence (Legg 2008) estimated as AIQ (Legg & Veness 2011)."""
