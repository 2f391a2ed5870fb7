"""Application services: the only code that changes domain state."""
