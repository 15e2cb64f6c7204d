"""Claim presets: each IdP's attribute names → the canonical user; email fallback; overrides."""

from __future__ import annotations

import pytest

from broker.claims.presets import (
    ENTRA_GROUPS,
    ENTRA_GROUPS_LINK,
    NoUsableEmail,
    claim_names_for,
    groups_overage_signalled,
    map_claims,
)
from broker.model import Identity

ENTRA = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
MS = "http://schemas.microsoft.com/identity/claims/"


def identity(name_id: str = "someone", **attributes: tuple[str, ...]) -> Identity:
    return Identity("up", "https://idp", "_a", name_id, None, dict(attributes))


def entra(name_id="x", **by_suffix):
    names = {
        "email": ENTRA + "emailaddress", "upn": ENTRA + "name", "given": ENTRA + "givenname",
        "sur": ENTRA + "surname", "oid": MS + "objectidentifier", "display": MS + "displayname",
        "groups": ENTRA_GROUPS, "department": ENTRA + "department",
    }  # fmt: skip
    return identity(name_id, **{names[k]: v for k, v in by_suffix.items()})


def test_entra_preset_reads_the_claim_uris():
    claims = map_claims(
        entra(email=("Alex@Contoso.example",), given=("Alex",), sur=("Morgan",), oid=("0b6f",),
              display=("Alex Morgan",), groups=("g1", "g2", "g1"), department=("Sales",)),
        claim_names_for("entra", {}),
    )  # fmt: skip
    assert (claims.email, claims.first_name, claims.last_name) == ("alex@contoso.example", "Alex", "Morgan")
    assert (claims.object_id, claims.display_name, claims.department) == ("0b6f", "Alex Morgan", "Sales")
    assert claims.groups == ("g1", "g2")  # de-duplicated, order kept


def test_email_falls_back_to_an_email_name_id_then_the_upn():
    names = claim_names_for("entra", {})
    assert map_claims(entra("nameid@contoso.example"), names).email == "nameid@contoso.example"
    assert map_claims(entra("opaque-id", upn=("upn@contoso.example",)), names).email == "upn@contoso.example"
    # the email claim wins over both
    both = entra("nameid@contoso.example", email=("claim@contoso.example",), upn=("upn@contoso.example",))
    assert map_claims(both, names).email == "claim@contoso.example"


@pytest.mark.parametrize("value", ["", "not-an-email", "a@b", "<script>@x.example", "two@@x.example"])
def test_no_usable_email_is_refused_with_a_clear_message(value):
    with pytest.raises(NoUsableEmail) as refused:
        map_claims(entra("opaque", email=(value,)), claim_names_for("entra", {}))
    assert "did not send an email address" in refused.value.public_message


def test_okta_defaults_and_admin_overrides():
    okta = identity("x", email=("j@f.example",), firstName=("Jo",), lastName=("Kim",), groups=("Partners",))
    claims = map_claims(okta, claim_names_for("okta", {}))
    assert (claims.email, claims.first_name, claims.groups) == ("j@f.example", "Jo", ("Partners",))
    renamed = identity("x", mail=("j@f.example",), memberOf=("Partners",), hireDate=("2024-01-02",))
    names = claim_names_for("okta", {"email": ["mail"], "groups": ["memberOf"], "extra": ["hireDate"]})
    claims = map_claims(renamed, names)
    assert (claims.email, claims.groups, claims.extra) == (
        "j@f.example",
        ("Partners",),
        {"hireDate": ("2024-01-02",)},
    )


@pytest.mark.parametrize("preset", ["google", "onelogin", "generic"])
def test_other_presets_read_their_common_names(preset):
    claims = map_claims(identity("x", email=("a@b.example",), firstName=("A",), lastName=("B",)),
                        claim_names_for(preset, {}))  # fmt: skip
    assert (claims.email, claims.first_name, claims.last_name) == ("a@b.example", "A", "B")


def test_overage_is_signalled_by_groups_link_or_a_missing_groups_claim():
    names = claim_names_for("entra", {})
    assert groups_overage_signalled(entra(**{}), names)
    assert groups_overage_signalled(identity("x", **{ENTRA_GROUPS_LINK: ("https://graph",)}), names)
    assert not groups_overage_signalled(entra(groups=("g",)), names)
