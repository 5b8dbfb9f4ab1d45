"""Server-rendered dashboard under `/ui`: scenario list, live DAG view, queues."""

from scenarist.dashboard.router import create_dashboard_router

__all__ = ["create_dashboard_router"]
