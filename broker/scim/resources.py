"""The SCIM resources and service description (scim2-models), and the protocol service (scim2-server).

The policy accepts what Microsoft Entra really sends (PATCH `remove` with a `value` naming the members to drop,
and `add`/`replace` on a filtered path that matches nothing yet), on top of what scim2-models already reads
leniently (capitalised ops such as "Replace", booleans as the strings "True"/"False"). Unknown attributes are
refused: the IdP learns at once that a mapping is wrong instead of silently losing data.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    Patch,
    Resource,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    User,
)
from scim2_server.service import ScimService


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
    return ScimService(provider(max_results))


def model_of(resource_type: ResourceType) -> type[Resource[Any]]:
    return service().get_model(resource_type)
