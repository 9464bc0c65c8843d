"""Gmail: the connector (framework-free, one module per job) and the intake that turns a message into
a task, shared by the Gmail watcher and the email server."""
from mcp_servers.gmail.config import SCOPES, GmailConfig, save_token
from mcp_servers.gmail.connector import GmailConnector
from mcp_servers.gmail.errors import (GmailAuthError, GmailConnectionError, GmailError, GmailHistoryExpiredError,
                                      GmailRateLimitError, GmailResponseError)

__all__ = ["SCOPES", "GmailConfig", "save_token", "GmailConnector", "GmailAuthError", "GmailConnectionError",
           "GmailError", "GmailHistoryExpiredError", "GmailRateLimitError", "GmailResponseError"]
