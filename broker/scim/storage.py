"""The scim2-server storage of one SCIM tenant: resources in the broker's store, users pushed to LearnUpon.

scim2-server does the protocol (validation, PATCH, conditions, responses); it calls this storage with whole
resources. Every write pushes the affected users to LearnUpon first and keeps the resource only once that
worked, so an IdP that retries after an error replays the same change and nothing is done twice.
"""

from __future__ import annotations

import logging
from typing import Any

from scim2_models import (
    InvalidValueException,
    Meta,
    NotFoundException,
    NotImplementedException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    SearchRequest,
    UniquenessException,
)
from scim2_server.storage import ScimStorage, SearchPage
from scim2_server.utils import parametrize

from broker.config import Config
from broker.ops.audit import audit
from broker.scim.fanout import Fanout
from broker.scim.filters import CASE_EXACT, lookup_for
from broker.scim.mapping import claims_of, portals_for
from broker.scim.push import EmailChangeRefused, Pusher, PushReport
from broker.scim.records import kind_of, member_ids, next_version, now, same, unique_values, work_emails
from broker.scim.resources import model_of
from broker.scim.state import ScimState, value_key
from broker.scim.trust import check_write

log = logging.getLogger(__name__)


class BridgeStorage(ScimStorage):
    """One tenant (`/scim/v2` or `/scim/v2/portals/<portal>`), as seen by one authenticated SCIM client."""

    def __init__(
        self,
        config: Config,
        state: ScimState,
        pusher: Pusher,
        *,
        portal: str | None,
        client_name: str,
        upstream: str | None,
        fanout: Fanout | None = None,
    ):
        self.config = config
        self.state = state
        self.pusher = pusher
        self.portal = portal
        self.client_name = client_name
        self.upstream = upstream
        self.lock_seconds = config.scim.lock_seconds
        self.fanout = fanout or Fanout.inline()

    # -- reading ---------------------------------------------------------------------------------------------

    def _model(self, resource_type: ResourceType) -> type[Resource[Any]]:
        return model_of(resource_type)

    def _record(self, kind: str, resource_id: str) -> dict[str, Any]:
        record = self.state.load(kind, resource_id)
        if record is None:
            raise NotFoundException(detail=f"{kind} {resource_id} not found")
        return record

    def _resource(self, resource_type: ResourceType, data: dict[str, Any]) -> Resource[Any]:
        data = dict(data)
        if resource_type.name == "User":
            groups = self.state.load_many("Group", self.state.groups_of(data["id"]))
            if groups:
                data["groups"] = [
                    {
                        "value": g["resource"]["id"],
                        "display": g["resource"].get("displayName"),
                        "type": "direct",
                    }
                    for g in groups
                ]
        return self._model(resource_type).model_validate(data)

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        record = self._record(kind_of(resource_type), resource_id)
        return self._resource(resource_type, record["resource"])

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        if len(resource_types) != 1:
            raise NotImplementedException(detail="search at the root is not supported; use /Users or /Groups")
        resource_type = resource_types[0]
        kind = kind_of(resource_type)
        start = search_request.start_index_0 or 0
        count = search_request.count
        scim_filter = search_request.filter
        if scim_filter is None:
            ids = self.state.all_ids(kind)
            page_ids = ids[start : None if count is None else start + count]
            records = self.state.load_many(kind, page_ids)
            return SearchPage(len(ids), [self._resource(resource_type, r["resource"]) for r in records])
        lookup = lookup_for(kind, scim_filter.ast)
        if lookup.index == "id":
            candidates = [lookup.value]
        else:
            found = self.state.lookup(
                kind, lookup.index, value_key(lookup.value, case_exact=lookup.index in CASE_EXACT)
            )
            candidates = [found] if found else []
        model = self._model(resource_type)
        bound = parametrize(ScimFilter, model)(str(scim_filter))
        resources = [
            self._resource(resource_type, r["resource"]) for r in self.state.load_many(kind, candidates)
        ]
        matched = [r for r in resources if bound.match(r)]
        return SearchPage(len(matched), matched[start : None if count is None else start + count])

    # -- writing ---------------------------------------------------------------------------------------------

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        kind = kind_of(resource_type)
        resource_id = self.state.new_id()
        created = now()
        resource = resource.model_copy(deep=True)
        resource.id = resource_id
        resource.meta = Meta(resource_type=kind, created=created, last_modified=created, version='W/"1"')
        data = self._storable(resource)
        if kind == "Group":
            self._check_members(member_ids(data))
        uniques = unique_values(kind, data)
        self._claim(kind, resource_id, uniques)
        try:
            if kind == "User":
                with self.state.locked("User", resource_id, self.lock_seconds):
                    self._push_user(resource_id, data, "created")
            else:
                self._push_members(resource_id, data, set(), member_ids(data), renamed=False)
        except BaseException:
            # Not kept: the IdP retries with a new id, and LearnUpon users made meanwhile are adopted then.
            self.fanout.discard()
            self._release(kind, resource_id, uniques)
            self.state.set_pushed(resource_id, {})
            raise
        self.state.save(kind, resource_id, {"resource": data, "seq": self.state.number(kind, resource_id)})
        self._index_emails(resource_id, data, [])
        if kind == "Group":
            audit("scim.group.created", **self._who(), scim_id=resource_id, members=len(member_ids(data)))
        self.fanout.flush()  # the state is stored: the jobs will read it
        return self._resource(resource_type, data)

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        kind = kind_of(resource_type)
        resource_id = str(resource.id)
        with self.state.locked(kind, resource_id, self.lock_seconds):
            record = self._record(kind, resource_id)
            before = record["resource"]
            version = (before.get("meta") or {}).get("version")
            if expected_version is not None and version != expected_version:
                raise PreconditionFailedException(detail="the resource changed meanwhile; read it again")
            data = self._storable(resource)
            data["meta"] = {**before.get("meta", {}), "lastModified": now().isoformat(), "version": version}
            if same(before, data):
                if kind == "User":  # nothing new, but finish what an earlier change may have left undone
                    self._push_user(resource_id, before, "updated", quiet=True)
                    self.fanout.flush()
                return self._resource(resource_type, before)
            data["meta"]["version"] = next_version(version)
            if kind == "Group":
                self._check_members(sorted(set(member_ids(data)) - set(member_ids(before))))
            old_uniques, new_uniques = unique_values(kind, before), unique_values(kind, data)
            added = {k: v for k, v in new_uniques.items() if old_uniques.get(k) != v}
            self._claim(kind, resource_id, added)
            try:
                if kind == "User":
                    self._push_user(resource_id, data, "updated")
                else:
                    self._push_members(
                        resource_id, data, set(member_ids(before)), member_ids(data),
                        renamed=before.get("displayName") != data.get("displayName"),
                    )  # fmt: skip
            except BaseException:
                self.fanout.discard()
                self._release(kind, resource_id, added)
                raise
            self._release(
                kind, resource_id, {k: v for k, v in old_uniques.items() if new_uniques.get(k) != v}
            )
            self.state.save(kind, resource_id, {**record, "resource": data})
            self._index_emails(resource_id, data, work_emails(before))
            if kind == "Group":
                audit("scim.group.updated", **self._who(), scim_id=resource_id, members=len(member_ids(data)))
        self.fanout.flush()  # after the lock: a job for this user waits for it
        return self._resource(resource_type, data)

    def delete(
        self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None
    ) -> None:
        kind = kind_of(resource_type)
        with self.state.locked(kind, resource_id, self.lock_seconds):
            record = self._record(kind, resource_id)
            data = record["resource"]
            version = (data.get("meta") or {}).get("version")
            if expected_version is not None and version != expected_version:
                raise PreconditionFailedException(detail="the resource changed meanwhile; read it again")
            if kind == "User":
                pushed = self.state.pushed(resource_id)
                claims = claims_of(data, [])
                now, later = self.fanout.split(self.pusher.pending(claims, False, [], pushed, removing=True))
                try:
                    _, report = self.pusher.push(claims, False, [], pushed, removing=True, only=set(now))
                finally:
                    self.state.set_pushed(resource_id, pushed)  # what jobs still have to remove stays
                self.fanout.defer(resource_id, later)
                group_ids = self.state.groups_of(resource_id)
                self.state.set_groups_of(resource_id, [])
                audit("scim.user.deleted", **self._who(), scim_id=resource_id, email=claims.email,
                      portals=report.actions, learnupon_calls=report.calls, queued=later)  # fmt: skip
            else:
                self._push_members(
                    resource_id, {**data, "members": []}, set(member_ids(data)), [], renamed=False
                )
                group_ids = []
                audit("scim.group.deleted", **self._who(), scim_id=resource_id)
            self._release(kind, resource_id, unique_values(kind, data))
            self._index_emails(resource_id, {}, work_emails(data))
            self.state.forget(kind, resource_id, record)
        self.fanout.flush()
        for group_id in group_ids:  # drop the deleted user from its groups' member lists
            self._drop_member(group_id, resource_id)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _who(self) -> dict[str, Any]:
        return {"client": self.client_name, "tenant": self.state.tenant}

    @staticmethod
    def _storable(resource: Resource[Any]) -> dict[str, Any]:
        """The resource as JSON without what must never be kept (a password) or is computed (a user's groups)."""
        data = resource.model_dump(mode="json")
        data.pop("password", None)
        data.pop("groups", None)
        return data

    def _check_members(self, ids: list[str]) -> None:
        """Members are this client's own users or groups: another client's ids (or made-up ones) are unknown
        here, and a group must never route, rename or disable a user this client did not push."""
        if not ids:
            return
        users = {r["resource"]["id"] for r in self.state.load_many("User", ids)}
        groups = {
            r["resource"]["id"] for r in self.state.load_many("Group", [i for i in ids if i not in users])
        }
        unknown = [i for i in ids if i not in users and i not in groups]
        if unknown:
            raise InvalidValueException(
                detail=f"unknown member id {unknown[0]}: not a user or group of this client"
            )

    def _claim(self, kind: str, resource_id: str, uniques: dict[str, str]) -> None:
        taken: dict[str, str] = {}
        for name, digest in uniques.items():
            if not self.state.claim(kind, name, digest, resource_id):
                self._release(kind, resource_id, taken)
                raise UniquenessException(detail=f"another {kind} already has this {name}")
            taken[name] = digest

    def _release(self, kind: str, resource_id: str, uniques: dict[str, str]) -> None:
        for name, digest in uniques.items():
            self.state.release(kind, name, digest, resource_id)

    def _index_emails(self, resource_id: str, data: dict[str, Any], old: list[str]) -> None:
        new = work_emails(data) if data else []
        for digest in old:
            if digest not in new:
                self.state.release("User", "email", digest, resource_id)
        for digest in new:
            if digest not in old:
                self.state.claim("User", "email", digest, resource_id)

    def _group_names(self, group_ids: list[str], override: dict[str, str] | None = None) -> list[str]:
        names = {
            g["resource"]["id"]: g["resource"].get("displayName") or ""
            for g in self.state.load_many("Group", group_ids)
        }
        names.update(override or {})
        return [names[g] for g in group_ids if names.get(g)]

    def _push_user(
        self,
        user_id: str,
        data: dict[str, Any],
        what: str,
        group_ids: list[str] | None = None,
        group_names: dict[str, str] | None = None,
        *,
        users: int = 1,
        quiet: bool = False,
        only: str | None = None,
    ) -> PushReport:
        """Push one user (its lock held) with its groups; save what was pushed, even on failure. The portals
        that differ are pushed now or left to jobs (`Fanout`); `only`: just that portal (a job)."""
        groups = self.state.groups_of(user_id) if group_ids is None else group_ids
        claims = claims_of(data, self._group_names(groups, group_names))
        # the login's boundary: the client's upstream must be allowed to assert this address
        check_write(self.config, self.client_name, self.upstream, claims.email, user_id)
        active = data.get("active") is not False
        wanted = portals_for(self.config, claims, self.upstream, self.portal)
        pushed = self.state.pushed(user_id)
        portals = [p for p in self.pusher.pending(claims, active, wanted, pushed) if only in (None, p)]
        now, later = self.fanout.split(portals, users)
        try:
            _, report = self.pusher.push(claims, active, wanted, pushed, only=set(now))
        except EmailChangeRefused as exc:
            audit("scim.user.refused", **self._who(), scim_id=user_id, email=claims.email, portal=exc.portal,
                  reason=exc.reason, reference=exc.reference)  # fmt: skip
            raise
        finally:
            self.state.set_pushed(user_id, pushed)
        self.fanout.defer(user_id, later)
        if not (quiet or what == "member") or report.calls or later:
            audit(f"scim.user.{what}", **self._who(), scim_id=user_id, email=claims.email, active=active,
                  portals=report.actions, learnupon_calls=report.calls, queued=later)  # fmt: skip
        return report

    def converge(self, user_id: str, portal: str) -> PushReport:
        """Bring one user's account in one portal in line with the state stored now (a background job):
        routed there → as the user should be; deleted or no longer routed → deprovisioned."""
        with self.state.locked("User", user_id, self.lock_seconds):
            record = self.state.load("User", user_id)
            if record is not None:
                return self._push_user(user_id, record["resource"], "pushed", quiet=True, only=portal)
            pushed = self.state.pushed(user_id)
            try:
                _, report = self.pusher.push(
                    claims_of({}, []), False, [], pushed, removing=True, only={portal}
                )
            finally:
                self.state.set_pushed(user_id, pushed)
        if report.calls:
            audit("scim.user.pushed", **self._who(), scim_id=user_id, portals=report.actions,
                  learnupon_calls=report.calls)  # fmt: skip
        return report

    def _push_members(
        self, group_id: str, data: dict[str, Any], before: set[str], after: list[str], *, renamed: bool
    ) -> None:
        """Push every user whose groups change: members added or removed, or all of them on a rename."""
        after_set = set(after)
        affected = (before | after_set) if renamed else (before ^ after_set)
        name = {group_id: str(data.get("displayName") or "")}
        for user_id in sorted(affected):
            with self.state.locked("User", user_id, self.lock_seconds):
                record = self.state.load("User", user_id)
                if record is None:
                    continue  # an unknown member id: nothing to push (RFC 7643 lets members be any resource)
                groups = set(self.state.groups_of(user_id))
                groups = groups | {group_id} if user_id in after_set else groups - {group_id}
                self._push_user(
                    user_id, record["resource"], "member", sorted(groups), name, users=len(affected)
                )
                self.state.set_groups_of(user_id, sorted(groups))

    def _drop_member(self, group_id: str, user_id: str) -> None:
        with self.state.locked("Group", group_id, self.lock_seconds):
            record = self.state.load("Group", group_id)
            if record is None:
                return
            data = record["resource"]
            members = [m for m in data.get("members") or [] if m.get("value") != user_id]
            if len(members) != len(data.get("members") or []):
                data["members"] = members
                data["meta"]["version"] = next_version(data["meta"].get("version"))
                self.state.save("Group", group_id, record)
