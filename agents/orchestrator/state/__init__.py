"""The orchestrator's shared state: run checkpoints, leases, the trace and circuit breakers, in Redis."""
