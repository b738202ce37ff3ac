"""`olmoctl plan`: compute, time, energy and checkpoint-interval arithmetic (costs), its
inputs from profiles and past runs (inputs), and the failure simulation (simulate).

May import core.outputs (figures), core.launch (memory, checks, specs) and below.
"""
