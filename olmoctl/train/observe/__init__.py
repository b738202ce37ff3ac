"""What the job tells the outside: the event log rank 0 appends (events), metrics sinks
(sinks), held-out evaluation (evaluate) and straggler timing (stragglers).

May import train.data, train.model, train.checkpoint and train.runtime.
"""
