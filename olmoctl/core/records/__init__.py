"""Reproducibility records: record.json written at submit and refreshed from what the job
reported (record), the code and data fingerprints (fingerprint), and two records compared
field by field (compare).

May import core.track (a run's events); nothing above it.
"""
