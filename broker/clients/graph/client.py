"""Microsoft Graph calls for group names: getByIds, $batch and transitiveMemberOf, and plain GETs (one object,
or every page of a listing) for other reads such as a group's members.

Every public call runs within a budget (seconds): retries never run past it, so a slow Graph delays a login by
at most the budget. The request loop is broker.clients.graph.transport.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from broker.clients.graph.errors import GraphAuthError, GraphError
from broker.clients.graph.transport import GraphTransport, _error_of
from broker.clients.http import Budget, retry_after_seconds
from broker.config.groups import GUID_RE

log = logging.getLogger("broker.clients.graph")

GET_BY_IDS_MAX = 1000  # Graph's limit for directoryObjects/getByIds
BATCH_MAX = 20  # Graph's limit for requests in one $batch
PAGE_SIZE = 999  # the maximum $top for transitiveMemberOf (default would be 100)
MAX_PAGES = 100  # of one listing, unless the caller allows more


class GraphClient(GraphTransport):
    """Reads group names from Microsoft Graph with client credentials. One per upstream; thread-safe.

    Retries are done here rather than by urllib3's `Retry`: urllib3 cannot see the per-call budget (its
    waits and per-attempt timeouts add up beyond it) and cannot retry the 429s found inside a $batch answer.
    """

    # ---- public calls -------------------------------------------------------------------------------

    def names_by_ids(self, ids: Iterable[str], *, budget: float | None = None) -> dict[str, str]:
        """displayName of each group object ID Graph knows ({lower-case GUID: name}); unknown IDs are absent.

        Mode `getByIds` sends one request per 1000 IDs (needs Directory.Read.All); mode `batch` sends
        `GET /groups/{id}` in $batch requests of 20 (needs only GroupMember.Read.All).
        """
        wanted = _unique_guids(ids)
        if not wanted:
            return {}
        call = Budget.start(self.default_budget if budget is None else budget)
        if self.mode == "batch":
            return self._redacting(self._names_by_batch, wanted, call)
        return self._redacting(self._names_by_get_by_ids, wanted, call)

    def user_groups(self, object_id: str, *, budget: float | None = None) -> dict[str, str]:
        """All groups the user is a member of, directly or nested ({lower-case GUID: name}), every page."""
        if not GUID_RE.match(object_id):
            raise ValueError("object_id must be the user's object ID (a GUID)")
        call = Budget.start(self.default_budget if budget is None else budget)
        return self._redacting(self._user_groups, object_id.lower(), call)

    def get_json(
        self, url: str, *, what: str, permission: str, budget: float | None = None
    ) -> dict[str, Any]:
        """The JSON object of one GET: `url` is a path under graph_base (`/v1.0/groups/{id}`) or a full URL
        there. Retried within the budget like every call; `what` names the call in errors, and a 401/403 is
        a GraphAuthError naming the application `permission` it needs."""
        call = Budget.start(self.default_budget if budget is None else budget)
        return self._redacting(
            self._graph_json, "GET", self._graph_url(url), call, what=what, permission=permission
        )

    def get_all(
        self,
        url: str,
        *,
        what: str,
        permission: str,
        budget: float | None = None,
        max_pages: int = MAX_PAGES,
    ) -> list[dict[str, Any]]:
        """Every object of a listing (`value`), following `@odata.nextLink` page after page, all pages within
        one budget. `url`, `what` and `permission` as for `get_json`."""
        call = Budget.start(self.default_budget if budget is None else budget)
        return self._redacting(
            self._all_pages, self._graph_url(url), call, what=what, permission=permission, max_pages=max_pages
        )

    # ---- the Graph operations -----------------------------------------------------------------------

    def _names_by_get_by_ids(self, wanted: list[str], call: Budget) -> dict[str, str]:
        names: dict[str, str] = {}
        wanted_set = set(wanted)
        for chunk in _chunks(wanted, GET_BY_IDS_MAX):
            body = self._graph_json(
                "POST",
                f"{self.graph_base}/v1.0/directoryObjects/getByIds",
                call,
                what="getByIds",
                permission="Directory.Read.All",
                json={"ids": chunk, "types": ["group"]},
            )
            for obj in _values(body, "getByIds"):
                if obj.get("@odata.type", "#microsoft.graph.group") != "#microsoft.graph.group":
                    continue
                gid, name = _id_and_name(obj)
                if gid in wanted_set and name is not None:
                    names[gid] = name
        return names

    def _names_by_batch(self, wanted: list[str], call: Budget) -> dict[str, str]:
        names: dict[str, str] = {}
        pending = wanted
        attempt = 0
        while pending:
            retry: list[str] = []
            retry_after: list[float] = []
            for chunk in _chunks(pending, BATCH_MAX):
                by_request_id = {str(n): gid for n, gid in enumerate(chunk, 1)}
                body = self._graph_json(
                    "POST",
                    f"{self.graph_base}/v1.0/$batch",
                    call,
                    what="$batch",
                    permission="GroupMember.Read.All",
                    json={
                        "requests": [
                            {"id": rid, "method": "GET", "url": f"/groups/{gid}?$select=id,displayName"}
                            for rid, gid in by_request_id.items()
                        ]
                    },
                )
                responses = body.get("responses")
                if not isinstance(responses, list):
                    raise GraphError("$batch: the answer has no 'responses' list")
                for item in responses:
                    gid = by_request_id.pop(str(item.get("id")), None) if isinstance(item, dict) else None
                    if gid is None:
                        continue
                    status = item.get("status")
                    sub = item.get("body") if isinstance(item.get("body"), dict) else {}
                    if status == 200:
                        _, name = _id_and_name(sub)
                        if name is not None:
                            names[gid] = name
                    elif status == 404:
                        continue  # no such group (deleted, or another tenant's): the caller decides
                    elif status == 429 or (isinstance(status, int) and status >= 500):
                        retry.append(gid)
                        wait = retry_after_seconds(_header(item, "Retry-After"))
                        if wait is not None:
                            retry_after.append(wait)
                    elif status in (401, 403):
                        code, message = _error_of(sub)
                        raise GraphAuthError(
                            f"$batch: Graph refused GET /groups/{gid} (HTTP {status} {code}: {message}); "
                            "the app registration needs the GroupMember.Read.All application permission "
                            "with admin consent"
                        )
                    else:
                        code, message = _error_of(sub)
                        raise GraphError(
                            f"$batch: GET /groups/{gid} answered HTTP {status} {code}: {message}"
                        )
                retry.extend(by_request_id.values())  # requests the answer left out: ask again
            if not retry:
                break
            attempt += 1
            time.sleep(
                self._wait_before_retry(
                    "$batch",
                    f"{len(retry)} group requests throttled or failed",
                    attempt,
                    max(retry_after) if retry_after else None,
                    call,
                )
            )
            pending = retry
        return names

    def _user_groups(self, object_id: str, call: Budget) -> dict[str, str]:
        url = (
            f"{self.graph_base}/v1.0/users/{object_id}/transitiveMemberOf/microsoft.graph.group"
            f"?$select=id,displayName&$top={PAGE_SIZE}"
        )
        groups: dict[str, str] = {}
        nameless = 0
        for obj in self._all_pages(url, call, what="transitiveMemberOf", permission="GroupMember.Read.All"):
            gid, name = _id_and_name(obj)
            if gid is None:
                continue
            if name is None:
                nameless += 1  # Graph hides names it is not allowed to show (only User.Read.All)
                continue
            groups[gid] = name
        if nameless:
            log.warning(
                "graph transitiveMemberOf: %d groups came without a displayName; "
                "the app registration needs GroupMember.Read.All",
                nameless,
            )
        return groups

    def _all_pages(
        self, url: str, call: Budget, *, what: str, permission: str, max_pages: int = MAX_PAGES
    ) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        for _page in range(max_pages):
            body = self._graph_json("GET", url, call, what=what, permission=permission)
            objects.extend(_values(body, what))
            next_link = body.get("@odata.nextLink")
            if next_link is None:
                return objects
            # the link carries our token to wherever it points: follow it only to Graph itself
            if not isinstance(next_link, str) or not next_link.startswith(self.graph_base + "/"):
                raise GraphError(f"{what}: refusing a nextLink that does not point at graph_base")
            url = next_link
        raise GraphError(f"{what}: more than {max_pages} pages; giving up")


def _unique_guids(ids: Iterable[str]) -> list[str]:
    unique: dict[str, None] = {}
    for value in ids:
        if not isinstance(value, str) or not GUID_RE.match(value):
            # IDs end up in URLs and $batch paths: only GUIDs go there
            raise ValueError(f"not a group object ID: {value!r}")
        unique[value.lower()] = None
    return list(unique)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _id_and_name(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    gid, name = obj.get("id"), obj.get("displayName")
    return (
        gid.lower() if isinstance(gid, str) else None,
        name if isinstance(name, str) and name else None,
    )


def _values(body: dict[str, Any], what: str) -> list[dict[str, Any]]:
    value = body.get("value")
    if not isinstance(value, list):
        raise GraphError(f"{what}: the answer has no 'value' list")
    return [obj for obj in value if isinstance(obj, dict)]


def _header(item: dict[str, Any], name: str) -> str | None:
    headers = item.get("headers")
    if isinstance(headers, dict):
        for key, value in headers.items():
            if key.lower() == name.lower():
                return str(value)
    return None
