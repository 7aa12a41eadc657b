"""Bringing comments in from other comment systems, and taking them out (DESIGN §9)."""
