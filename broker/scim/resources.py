"""The SCIM resources and service description (scim2-models), and the protocol service (scim2-server).

The policy accepts what Microsoft Entra really sends (PATCH `remove` with a `value` naming the members to drop,
and `add`/`replace` on a filtered path that matches nothing yet), on top of what scim2-models already reads
leniently (capitalised ops such as "Replace", booleans as the strings "True"/"False"). Unknown attributes are
refused: the IdP learns at once that a mapping is wrong instead of silently losing data.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any

from pydantic import Field, field_validator
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    ETag,
    Extension,
    Filter,
    Group,
    Mutability,
    Patch,
    Reference,
    Resource,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    User,
)
from scim2_server.service import ScimService


class Manager(ComplexAttribute):
    """RFC 7643's manager, with `$ref` optional: Entra sends the manager's id alone."""

    value: Annotated[str | None, CaseExact.true] = None
    ref: Reference[Any] | None = Field(None, serialization_alias="$ref", validation_alias="$ref")
    display_name: Annotated[str | None, Mutability.read_only] = None


class EnterpriseUser(Extension):
    """The enterprise extension (RFC 7643 §4.3). Entra sets `manager` to a bare id string (a PATCH `add` on
    `...:manager` with `"value": "<id>"`): it is read as `{"value": "<id>"}`."""

    __schema__ = URN("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")

    employee_number: str | None = None
    cost_center: str | None = None
    organization: str | None = None
    division: str | None = None
    department: str | None = None
    manager: Manager | None = None

    @field_validator("manager", mode="before")
    @classmethod
    def _bare_id(cls, value: Any) -> Any:
        return {"value": value} if isinstance(value, str) else value


ENTRA_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


ENTERPRISE_MANAGER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"


class BridgeService(ScimService):
    """scim2-server's service, reading two more Entra habits from Microsoft's SCIM tutorial: group creation lists
    the schema `http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group` (defines nothing we
    use, not a URN: dropped from `schemas`), and its sample-code PATCH "Add" on the bare path `manager` with a
    one-element list of `{"$ref", "value"}` (read as the enterprise extension's manager, which the tutorial's
    attribute table maps it to, rather than failing the whole PATCH)."""

    def read_body(self, model: Any, body: bytes, content_type: str | None, scim_ctx: Any) -> Any:
        if ENTRA_GROUP_SCHEMA.encode() in body or b'"manager"' in body:
            try:
                data = json.loads(body)
            except ValueError:
                data = None  # scim2-server answers the syntax error
            if isinstance(data, dict):
                if isinstance(data.get("schemas"), list):
                    data["schemas"] = [s for s in data["schemas"] if s != ENTRA_GROUP_SCHEMA]
                for operation in data.get("Operations") or []:
                    _bare_manager_path(operation)
                body = json.dumps(data).encode()
        return super().read_body(model, body, content_type, scim_ctx)


def _bare_manager_path(operation: Any) -> None:
    if not isinstance(operation, dict) or str(operation.get("path", "")).lower() != "manager":
        return
    operation["path"] = ENTERPRISE_MANAGER
    value = operation.get("value")
    if isinstance(value, list) and len(value) == 1:
        operation["value"] = value[0]


@cache
def provider(max_results: int = 200) -> ScimProvider:
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=max_results),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description="One long random token per SCIM client, sent as 'Authorization: Bearer <token>'",
                primary=True,
            )
        ],
    )
    policy = ScimPolicy(
        remove_value_as_filter=ScimPolicy.RemoveValue.apply,
        unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
    )
    return ScimProvider(
        models=[User, EnterpriseUser, Group],
        resource_types=[ResourceType.from_resource(User[EnterpriseUser]), ResourceType.from_resource(Group)],
        config=config,
        policy=policy,
    )


@cache
def service(max_results: int = 200) -> ScimService:
    return BridgeService(provider(max_results))


def model_of(resource_type: ResourceType) -> type[Resource[Any]]:
    return service().get_model(resource_type)
