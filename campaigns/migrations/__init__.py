"""campaigns revisions: a branch of the schema of its own (hub.migrate)."""
