"""Sandboxes: Docker containers and browsers (installed as agentkit.sandboxes)."""
