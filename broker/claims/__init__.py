"""Claims: upstream attributes → the broker's canonical user; group GUIDs → names (static map, cache, Graph)."""
