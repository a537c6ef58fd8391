"""Transcript tests for the pure conversation flows."""
