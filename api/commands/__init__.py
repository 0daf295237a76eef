"""Verb families of the `ledger` command line, each registered on the main group."""
