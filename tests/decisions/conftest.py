"""Decision tables: one row per server answer or state, the expected outcome beside it.

Each module of pure decisions has one table file here (``test_<module>_table.py``); the
mutation driver (``python -m tests.mutation``, see ``tests/MUTATION.md``) measures each module
against its own table. To pin a new server answer or state, add a row: an id that says what
the row is, the input, the outcome, and, for a real server family's behaviour, the family
(J: novicezk/midjourney-proxy, C: trueai-org/midjourney-proxy, N: new-api relays) with the
source file that shows it.
"""
