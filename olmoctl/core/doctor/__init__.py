"""`olmoctl doctor`: the preflight job rendered and submitted with a real run's profile
(job) and the per-rank reports folded into one line per check (report).

May import core.launch and below.
"""
