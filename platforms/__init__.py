"""aioamp package."""
