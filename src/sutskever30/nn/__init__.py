"""Building blocks shared by several papers."""
