"""Falcon resources: thin classes with injected services, one module per route family."""
