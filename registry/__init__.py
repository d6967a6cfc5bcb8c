"""Podium registry."""
