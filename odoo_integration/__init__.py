"""The books: the Odoo connector (JSON-RPC and JSON-2), its MCP server, invoice sync and the dashboard section."""
