"""The prediction path: row validation, scoring, flags, routing by policy, and recording."""
