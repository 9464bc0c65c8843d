"""Watchers: one module per channel on a shared base; each turns what arrives into task files."""
