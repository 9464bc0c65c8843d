"""The kernel every process uses: configuration, the vault and its files, the state store, the
audit trail, errors, retry, locks and the daemon plumbing.

Two rooms build on it: ``core.approval`` (requests, grants, policy, the gate: servers and engine)
and ``core.engine`` (plans, planners, skills, executor, workflow, Dashboard: loop and agent
interface only)."""
