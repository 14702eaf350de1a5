"""Utilities: reusable checks of the forgetting contract."""
