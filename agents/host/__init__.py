"""The agent host: what runs one agent. Its runtime (A2A HTTP, the bus consumer, registry heartbeats), the
request handler, cancels, the agent context and tool box, MCP mounting and per-agent configuration."""
