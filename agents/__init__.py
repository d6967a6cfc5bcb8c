"""Podium agents."""
