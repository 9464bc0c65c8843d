"""The task engine: plans and planners, the skill registry, the executor, the workflow that ties
them together, the Dashboard and the client skills use to reach the MCP servers. Only the
reasoning loop and the agent interface run it."""
