"""scenarist: scenarios in, task graphs out, dispatched to HTTP workers."""

__version__ = "0.1.0"
