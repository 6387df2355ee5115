"""Web push (written next)."""
