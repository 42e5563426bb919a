"""The synthetic demo registry (labelled as such everywhere it shows)."""
