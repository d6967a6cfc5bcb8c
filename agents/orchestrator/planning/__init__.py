"""How the orchestrator plans: the offline planner, the model planner, and the catalog they plan over."""
