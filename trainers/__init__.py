"""Trainers: scikit-learn pipelines from training specs, recorded in the ledger.

Pure functions over DataFrames (spec, steps, profile); data I/O in `trainers.io`;
`trainers.record.train_and_record` is the one place that talks to the ledger.
"""
