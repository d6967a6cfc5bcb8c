"""Podium bench."""
