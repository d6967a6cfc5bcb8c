"""Podium: many A2A agents on one Redis Streams bus, with MCP tools and an orchestrator."""
