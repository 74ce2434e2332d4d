"""Kubernetes I/O: one small async client, server-side apply, tolerant deletes."""
