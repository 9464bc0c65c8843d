"""Protocol-faithful fakes of third-party APIs, for tests only."""
