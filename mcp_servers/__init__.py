"""Podium mcp_servers."""
