"""The cursor every search runs on: one transaction with settings that suit short queries.

- jit off: a query over a day partition costs more than jit_above_cost, and compiling it
  takes longer (tens of ms) than most searches run.
- force_custom_plan: a prepared statement's generic plan cannot see the ts window or the
  pattern, so it neither prunes days at plan time nor judges the trigram index; custom plans
  are planned with the values (Django binds client-side today; this keeps it so if it changes).
- work_mem: top-N sorts and histogram hash aggregates stay in memory.
SET LOCAL-style (set_config(..., true)) so the pooled connection is left as it was.
"""

from contextlib import contextmanager

from django.db import connection, transaction

SETTINGS = {"jit": "off", "plan_cache_mode": "force_custom_plan", "work_mem": "64MB"}


@contextmanager
def search_cursor():
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in SETTINGS),
            [v for pair in SETTINGS.items() for v in pair],
        )
        yield cur
