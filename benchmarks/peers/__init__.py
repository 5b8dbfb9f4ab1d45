"""One runner per peer system; each runs inside its own virtualenv (see setup.sh)."""
