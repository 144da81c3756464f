"""Tables and the types that cross boundaries (API <-> workflow <-> activities)."""
