"""The grading engine: part manifests, sandbox backends, the wire protocol, trusted checks, Celery tasks."""
