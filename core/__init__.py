"""Shared kernel: configuration, vault, state store, audit, policy, retry, skills."""
