"""The A2A Agent Cards of Podium's built-in agents, one JSON file each (read with importlib.resources)."""
