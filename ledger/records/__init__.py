"""The record formats, pure: a new record field goes here (and in docs/records.md).

``entries`` (canonical RFC 8785 bytes and log entries, exactly once),
``vocab`` (account classes, actions, privacy patterns), ``entry_check``
(the checks every logged entry passes), ``index_rows`` (the feed's rows,
derived from an entry alone), ``export`` (CSV and NDJSON forms) and ``dsa``
(the mapping to the DSA Transparency Database).

No I/O, no database, no Flask or marshmallow (checked by tests/test_imports.py).
"""
