"""The database's clock, the one clock every host shares (DESIGN §4).

Leases, heartbeats, retry times and the reaper's cutoffs are computed in SQL with `db_now()`, so
a host whose clock drifts cannot expire another host's lease or declare it lost.

`db_now(offset_s)` renders as `now() + make_interval(secs => …)` on Postgres and as a
`strftime(…, 'now', '… seconds')` on SQLite, in the text form SQLAlchemy stores datetimes in
there (so comparisons with stored values order correctly).
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, Float, bindparam, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class db_now(FunctionElement):
    """The database's current UTC time, plus `offset_s` seconds (may be negative)."""

    type = DateTime(timezone=True)
    inherit_cache = True
    name = "db_now"

    def __init__(self, offset_s: float = 0.0) -> None:
        super().__init__(bindparam(None, float(offset_s), type_=Float()))


@compiles(db_now)
def _postgres_now(element, compiler, **kw) -> str:
    # now() is the transaction's start: every row written in one transaction shares it.
    return f"(now() + make_interval(secs => {compiler.process(element.clauses, **kw)}))"


@compiles(db_now, "sqlite")
def _sqlite_now(element, compiler, **kw) -> str:
    # %f is seconds with milliseconds; the trailing 000 gives the microseconds SQLAlchemy writes.
    return (f"strftime('%Y-%m-%d %H:%M:%f000', 'now', "
            f"({compiler.process(element.clauses, **kw)}) || ' seconds')")


def now_of(session_or_conn) -> datetime:
    """The database's time, read in the caller's session or connection (aware, UTC)."""
    value = session_or_conn.execute(select(db_now())).scalar_one()
    return aware(value)


def aware(dt):
    """SQLite hands datetimes back naive; every stored time is UTC."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=timezone.utc)


__all__ = ["db_now", "now_of", "aware"]
