"""Which stored resources a SCIM filter can match, from the indexes, without reading every resource.

scim2-models parses and validates the filter; here we only pick the indexed equality the IdPs use to look a
resource up (`userName eq`, `externalId eq`, `emails[type eq "work"].value eq`, `displayName eq`, `id eq`,
alone or inside `and`). The candidates are then checked against the whole filter by scim2-models, so the
answer is exact. A filter with no such equality (`co`, `sw`, `or`, `pr`, ...) is refused with `invalidFilter`
rather than answered by a slow scan or a wrong result.
"""

from __future__ import annotations

from dataclasses import dataclass

from scim2_models import InvalidFilterException
from scim2_models.path.expressions import (
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    ValuePath,
)

# (kind, lower-case attribute) → the index name; externalId is caseExact, the others are not.
INDEXED = {
    ("User", "username"): "userName",
    ("User", "externalid"): "externalId",
    ("Group", "displayname"): "displayName",
    ("Group", "externalid"): "externalId",
}
CASE_EXACT = {"externalId", "id"}


@dataclass(frozen=True)
class Lookup:
    """Look up `value` in index `index` ("id" means: the resource id itself)."""

    index: str
    value: str


def _attribute(node: Comparison) -> str:
    return node.attr_path.attr.lower() if node.attr_path.sub_attr is None else ""


def _lookup(kind: str, node: FilterNode) -> Lookup | None:
    if isinstance(node, Comparison) and node.op == CompareOperator.eq and isinstance(node.value, str):
        name = _attribute(node)
        if name == "id":
            return Lookup("id", node.value)
        index = INDEXED.get((kind, name))
        return Lookup(index, node.value) if index else None
    if isinstance(node, ValuePath) and kind == "User" and node.attr_path.attr.lower() == "emails":
        return _email_lookup(node.val_filter)
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_:
        for term in node.terms:
            found = _lookup(kind, term)
            if found is not None:
                return found
    return None


def _email_lookup(node: FilterNode) -> Lookup | None:
    if isinstance(node, Comparison) and node.op == CompareOperator.eq and isinstance(node.value, str):
        return Lookup("email", node.value) if node.attr_path.attr.lower() == "value" else None
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_:
        for term in node.terms:
            found = _email_lookup(term)
            if found is not None:
                return found
    return None


def lookup_for(kind: str, ast: FilterNode) -> Lookup:
    """The index lookup that finds every resource the filter can match; `invalidFilter` if there is none."""
    found = _lookup(kind, ast)
    if found is None:
        raise InvalidFilterException(
            detail='only eq on userName, externalId, emails[type eq "work"].value, displayName or id '
            "(optionally joined with and) is supported"
        )
    return found
