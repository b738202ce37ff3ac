"""Launching: profiles and recipes (catalog, yamlio), `-o` overrides, the one RunSpec
builder (specs), run names, memory estimates and the checks before a submission (checks),
the batch script (render, containers: pure, one quoting function), the run directory's
files (runfiles), the submission itself (submit), and a recorded run again (repro:
`launch --from`, `render --diff`).

May import core.records and core.track; nothing above it.
"""
