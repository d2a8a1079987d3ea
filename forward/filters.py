"""Which stored lines a target forwards.

Tenant, service and container are container-level: they become SQL conditions on the
`containers` row joined to each log row (forward/rows.py), so lines of other containers are
never even read. The `query` (search language) is applied per line in memory with the same
matcher the live tail uses (search.querylang), so a forwarding filter means what the search
box means. A query that does not parse is refused when the target is saved, and pauses the
target if one reaches a worker anyway, rather than forwarding lines it should hold back.
"""

from collections.abc import Callable

from psycopg import sql

from search import querylang


def query_error(query: str) -> str | None:
    if not query.strip():
        return None
    try:
        querylang.parse(query)
    except querylang.QueryError as e:
        return f"query: {e}"
    return None


def line_matcher(query: str) -> Callable[[object], bool] | None:
    """row -> bool for the target's query, or None when there is no query."""
    if not query.strip():
        return None
    problem = query_error(query)
    if problem:
        raise ValueError(problem)
    return querylang.compile_matcher(querylang.parse(query))


def glob_to_like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def container_conditions(tenant: str, service: str, container: str) -> tuple[sql.Composable, dict]:
    """SQL over the joined `containers c` row, with its parameters."""
    parts = [sql.SQL("c.tenant = %(f_tenant)s")]
    params: dict = {"f_tenant": tenant}
    if service:
        parts.append(sql.SQL("c.service = %(f_service)s"))
        params["f_service"] = service
    if container:
        name = container.lstrip("/")
        parts.append(sql.SQL("(c.name LIKE %(f_name)s OR c.container_id LIKE %(f_cid)s)"))
        params["f_name"] = glob_to_like(name)
        params["f_cid"] = glob_to_like(name).rstrip("%") + "%"
    return sql.SQL(" AND ").join(parts), params
