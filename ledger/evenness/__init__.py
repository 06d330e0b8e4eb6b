"""The evenness statistics, pure: a statistics change goes here (and in docs/statistics.md).

``facts`` (one row per decision, derived from log entries), ``compare``
(the comparisons between account classes), ``words`` (the sentences that
report them) and ``document`` (the signed-checkpoint-pinned document).
The statistical methods themselves are in ``ledger.stats``; computing at a
checkpoint and publishing is the database side's (``ledger.evenness_store``,
``ledger.evenness_cache``).

No I/O, no database, no Flask or marshmallow (checked by tests/test_imports.py).
"""
