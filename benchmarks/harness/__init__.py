"""Shared benchmark harness: workload, execution records, verification, metrics, processes.

Modules imported by the peer runners (`workload`, `records`) use the standard library only,
because they run inside each peer's own virtualenv.
"""
