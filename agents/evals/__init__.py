"""``podium eval``: score an orchestrator's answers against a question bank (see :mod:`.cases`)."""
