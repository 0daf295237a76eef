"""The provenance domain: aggregates whose nested past-tense classes are the events."""
