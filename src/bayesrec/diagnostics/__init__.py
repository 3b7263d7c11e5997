"""Diagnostics computed from fits, and their plots."""
