"""What olmoctl knows of its runs: a run by name and its spec (runs), the events a job
wrote (events), each attempt's ending and its class (attempts, classify, burnin), the one
batched accounting refresh and the table (status, status_reads), logs, the goodput ledger,
node health, and cancel (control).

The bottom of core: imports store, backends, schemas, never another core subpackage.
"""
