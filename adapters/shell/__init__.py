"""The shell adapter: a terminal chat against the real core (and the tests' chat)."""
