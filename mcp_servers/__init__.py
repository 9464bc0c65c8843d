"""MCP servers of the AI Employee and the connectors they drive."""
