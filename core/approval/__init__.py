"""The owner's say: approval requests and grants, the handbook's policy, and the gate in front of
the MCP servers' write tools. Used by the servers and by the task engine."""
