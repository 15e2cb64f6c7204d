"""Make LearnUpon hold what a SCIM user should be, portal by portal, with as few API calls as possible.

The comparison is with what was last pushed (kept in the store), not with a fresh read of LearnUpon: a change
that changes nothing costs no call, one changed field costs one `PUT users/{id}`. A new user costs one
`POST users`; if LearnUpon already has the email (a JIT login came first, or a retry after a lost answer),
the user is found by email and adopted, so there is never a duplicate. A user LearnUpon no longer has (deleted
there by hand) is created again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.clients.learnupon import (
    LearnUponClient,
    LearnUponConflict,
    LearnUponError,
    LearnUponNotFound,
    LearnUponRejected,
)
from broker.config import Config
from broker.model import Claims
from broker.scim.mapping import PortalUser, portal_user
from broker.scim.state import PortalGroups, Pushed
from broker.scim.trust import AccountLinks, ScimRefused

log = logging.getLogger(__name__)

GROUP_DESCRIPTION = (
    "Created by the SAML broker from a SCIM group; members are pushed by the identity provider."
)


class EmailChangeRefused(ScimRefused):
    """A user's new address cannot be given to its LearnUpon user in `portal` (taken by another user, or the
    LearnUpon user was changed by hand). Nothing is changed there; the SCIM request answers 409 with a detail
    that names no other user, portal or LearnUpon id (those are in `reason`, for the audit event and log)."""

    def __init__(self, portal: str, email: str, reason: str):
        super().__init__(
            409, "uniqueness", "the address cannot be given to this user's LearnUpon account", reason
        )
        self.portal = portal
        self.email = email


@dataclass
class PushReport:
    """What one push did: LearnUpon calls per portal and one word per portal (created, updated, ...)."""

    calls: dict[str, int] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


class Pusher:
    """Pushes users to the portals' LearnUpon APIs through the shared clients."""

    def __init__(
        self,
        config: Config,
        clients: Mapping[str, LearnUponClient],
        groups: PortalGroups,
        links: AccountLinks,
    ):
        self.config = config
        self.clients = clients
        self.groups = groups
        self.links = links  # whose accounts this SCIM client may take (the login's first-upstream records)

    def client(self, portal: str) -> LearnUponClient:
        client = self.clients.get(portal)
        if client is None:
            raise LearnUponError(f"portal {portal}: no LearnUpon API client (provisioning not configured)")
        return client

    def push(
        self,
        claims: Claims,
        active: bool,
        wanted: list[str],
        pushed: dict[str, Pushed],
        *,
        removing: bool = False,
        only: set[str] | None = None,
    ) -> tuple[dict[str, Pushed], PushReport]:
        """Bring every portal in `wanted` and in `pushed` (or just those in `only`) in line. Returns the new
        pushed state.

        `removing`: the SCIM user is being deleted, so every portal it was pushed to deprovisions it.
        On a LearnUpon error the state pushed so far is kept (the caller saves it) and the error raised.
        """
        report = PushReport()
        result = pushed  # changed in place, so the caller keeps what was done even when a call fails
        portals = _involved(wanted, pushed, removing)
        for portal in [p for p in portals if only is None or p in only]:
            client = self.client(portal)
            with client.budget(None) as scope:
                try:
                    if removing or portal not in wanted:
                        action = self._deprovision(portal, client, result)
                    else:
                        action = self._provision(
                            portal, client, portal_user(self.config, portal, claims, active), result
                        )
                finally:
                    if scope.requests:
                        report.calls[portal] = scope.requests
            if action:
                report.actions[portal] = action
        return result, report

    def pending(
        self,
        claims: Claims,
        active: bool,
        wanted: list[str],
        pushed: dict[str, Pushed],
        *,
        removing: bool = False,
    ) -> list[str]:
        """The portals `push` would call LearnUpon for, in routing order, found without any call: those whose
        last pushed state differs from what the user should now have there."""
        portals = _involved(wanted, pushed, removing)
        # a portal gone from the configuration cannot be reached
        known = [p for p in portals if p in self.config.portals]
        return [p for p in known if self._differs(p, claims, active, p in wanted and not removing, pushed)]

    def _differs(
        self, portal: str, claims: Claims, active: bool, routed: bool, pushed: dict[str, Pushed]
    ) -> bool:
        current = pushed.get(portal)
        deletes = self.config.portals[portal].scim.on_deprovision == "delete"
        if not routed:
            # deprovision: nothing to do when never pushed, or already disabled under the `disable` policy
            return current is not None and (deletes or current.fields.get("enabled") is not False)
        if current is None:
            return active  # a deactivated user is never created
        if not active and deletes:
            return True
        want = portal_user(self.config, portal, claims, active)
        if any(current.fields.get(k) != v for k, v in want.fields.items()):
            return True
        return {t.lower() for t in want.groups} != set(current.groups)

    # -- one portal ------------------------------------------------------------------------------------------

    def _provision(
        self, portal: str, client: LearnUponClient, want: PortalUser, state: dict[str, Pushed]
    ) -> str:
        current = state.get(portal)
        active = bool(want.fields["enabled"])
        if current is None and not active:
            return ""  # never create a user only to disable it
        if current is not None and not active and self.config.portals[portal].scim.on_deprovision == "delete":
            return self._deprovision(portal, client, state)
        action = ""
        if current is None:
            current, action = self._create(portal, client, want)
            state[portal] = current
        else:
            changed = {k: v for k, v in want.fields.items() if current.fields.get(k) != v}
            if changed:
                try:
                    self._update(portal, client, current, changed)
                except LearnUponNotFound:
                    # Deleted in LearnUpon by hand: create again, memberships start from nothing.
                    current, action = self._create(portal, client, want)
                    state[portal] = current
                else:
                    current.fields.update(changed)
                    action = "disabled" if changed.get("enabled") is False else "updated"
        if self._sync_groups(portal, client, current, want.groups) and not action:
            action = "groups"
        return action

    def _update(self, portal: str, client: LearnUponClient, current: Pushed, changed: dict[str, Any]) -> None:
        """One `PUT`: by id, or, when the address changes, LearnUpon's documented `PUT users/0` with the current
        email and `new_email` (the same LearnUpon user keeps its history; never a second user). That PUT picks
        the user by address, so the address is looked up first and must still be this user's: 2 calls."""
        fields = {k: v for k, v in changed.items() if k != "email"}
        if "email" not in changed:
            client.update_user(current.id, fields)
            return
        old, new = str(current.fields.get("email") or ""), str(changed["email"])
        self.links.check(portal, old, "rename")
        self.links.check(portal, new, "rename")
        holder = client.find_user_by_email(old)
        if holder is not None and int(holder["id"]) != current.id:
            raise EmailChangeRefused(
                portal, new, f"{old} in portal {portal} is now LearnUpon user {holder['id']}, not the broker's "
                f"user {current.id} (changed in LearnUpon by hand); the broker renames neither",
            )  # fmt: skip
        if holder is None:  # the old address is gone: see whether the rename was done already
            self._renamed_already(portal, client, current, new, fields)
        else:
            try:
                client.change_email(old, new, fields)
            except LearnUponNotFound:
                self._renamed_already(portal, client, current, new, fields)
            except LearnUponError as exc:
                if not _maybe_taken(exc):
                    raise
                holder = client.find_user_by_email(new)
                if holder is None or int(holder["id"]) == current.id:
                    raise
                raise EmailChangeRefused(
                    portal, new, f"another LearnUpon user of portal {portal} ({holder['id']}) already has the "
                    f"address {new}; the broker does not merge accounts",
                ) from None  # fmt: skip
        self.links.move(portal, old, new)

    @staticmethod
    def _renamed_already(
        portal: str, client: LearnUponClient, current: Pushed, new: str, fields: dict[str, Any]
    ) -> None:
        """LearnUpon no longer knows the old address: the change was made and its answer lost (then finish it),
        the user was renamed by hand (refused), or deleted (LearnUponNotFound: the caller creates it again)."""
        user = client.get_user(current.id)
        if user is None:
            raise LearnUponNotFound(f"LearnUpon user {current.id} of portal {portal} is gone", status=404)
        if str(user.get("email", "")).strip().lower() != new.strip().lower():
            raise EmailChangeRefused(
                portal, new, f"LearnUpon user {current.id} of portal {portal} no longer has the address the "
                "broker set (changed in LearnUpon by hand); the broker does not overwrite it",
            )  # fmt: skip
        if fields:
            client.update_user(current.id, fields)

    def _create(self, portal: str, client: LearnUponClient, want: PortalUser) -> tuple[Pushed, str]:
        email = str(want.fields["email"])
        # creating or adopting gives this client's upstream the address in this portal: as a login would
        self.links.check(portal, email, "create")
        body = {**want.fields, "user_type": "learner"}
        try:
            created = Pushed(client.create_user(body), dict(want.fields))
        except LearnUponError as exc:
            if not _maybe_taken(exc):
                raise
            # LearnUpon does not document which 4xx means "email taken": look, and adopt what is there.
            existing = client.find_user_by_email(email)
            if existing is None:
                raise
        else:
            self.links.record(portal, email)
            return created, "created"
        adopted = Pushed(int(existing["id"]), {})
        changed = {k: v for k, v in want.fields.items() if k != "email" and existing.get(k) != v}
        if changed:
            client.update_user(adopted.id, changed)
        adopted.fields = dict(want.fields)
        self.links.record(portal, email)
        return adopted, "adopted"

    def _deprovision(self, portal: str, client: LearnUponClient, state: dict[str, Pushed]) -> str:
        current = state.get(portal)
        if current is None:
            return ""
        if self.config.portals[portal].scim.on_deprovision == "delete":
            try:
                client.delete_user(current.id)
            except LearnUponNotFound:
                pass
            del state[portal]
            return "deleted"
        if current.fields.get("enabled") is False:
            return ""
        try:
            client.update_user(current.id, {"enabled": False})
        except LearnUponNotFound:
            del state[portal]
            return "gone"
        current.fields["enabled"] = False
        return "disabled"

    def _sync_groups(
        self, portal: str, client: LearnUponClient, current: Pushed, titles: tuple[str, ...]
    ) -> bool:
        wanted = {t.lower(): t for t in titles}
        changed = False
        for key, title in wanted.items():
            if key in current.groups:
                continue
            group_id = self._group_id(portal, client, title)
            try:
                client.add_membership(group_id, current.id)
            except LearnUponRejected as exc:
                if not _maybe_taken(
                    exc, (409, 422)
                ):  # 422 "already a member" (a login's SAML sync was first) is done
                    raise
            except LearnUponNotFound:
                # The group was deleted in LearnUpon: forget its id, create it again once.
                self.groups.forget(portal, title)
                group_id = self._group_id(portal, client, title)
                client.add_membership(group_id, current.id)
            current.groups[key] = [title, group_id]
            changed = True
        for key in [k for k in current.groups if k not in wanted]:
            title, group_id = current.groups[key]
            # LearnUpon deletes memberships by id; the group's member list (version 1.1) shows it.
            membership_id = client.find_membership_id(int(group_id), current.id)
            if membership_id is not None:  # None: already gone
                try:
                    client.remove_membership(membership_id)
                except LearnUponNotFound:
                    pass
            del current.groups[key]
            changed = True
        return changed

    def _group_id(self, portal: str, client: LearnUponClient, title: str) -> int:
        cached = self.groups.get(portal, title)
        if cached is not None:
            return cached
        found = _find_group(client, title)
        if found is None:
            try:
                found = client.create_group(title, GROUP_DESCRIPTION, sso_sync=True)
            except LearnUponError as exc:
                if not _maybe_taken(exc):
                    raise
                found = _find_group(client, title)  # created meanwhile
                if found is None:
                    raise
        self.groups.put(portal, title, found)
        return found


def _maybe_taken(exc: LearnUponError, statuses: tuple[int, ...] = (400, 409, 422)) -> bool:
    """A 4xx that may say "already exists" (409, or LearnUpon's undocumented 400/422); callers re-read."""
    return isinstance(exc, LearnUponConflict) or exc.status in statuses


def _find_group(client: LearnUponClient, title: str) -> int | None:
    for group in client.list_groups(title=title):
        if str(group.get("title", "")).lower() == title.lower() and group.get("id") is not None:
            return int(group["id"])
    return None


def _involved(wanted: list[str], pushed: dict[str, Pushed], removing: bool) -> list[str]:
    """The portals a push touches, in routing order: those the user should be in (none when the user is being
    removed), then those pushed to before. `push` and `pending` must agree on it."""
    return list(dict.fromkeys([*([] if removing else wanted), *pushed]))
