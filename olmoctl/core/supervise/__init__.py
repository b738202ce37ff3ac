"""Acting on runs that ended: resume and the watch loop (watch), what it tells people
(notices, notify), straggler policy (stragglers) and whether a full filesystem has room
again (space).

The top of core: may import every other core subpackage, sweep included.
"""
