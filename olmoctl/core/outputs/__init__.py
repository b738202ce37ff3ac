"""What a finished run leaves for people: the run card (card, with its loss figure from
figures) and the exported transformers model (export).

May import core.launch, core.records and core.track.
"""
