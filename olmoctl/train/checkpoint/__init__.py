"""Checkpoints: DCP save and load with a completion marker so a torn one is never taken for
complete (dcp), saves in the background (async_save), the filesystem checks and their
errors (storage), and which folders to keep (retention).

May import train.runtime only.
"""
