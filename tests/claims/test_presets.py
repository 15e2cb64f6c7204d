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
from broker.web.error_table import shown_for

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
    assert "did not send an email address" in str(
        shown_for(type(refused.value)).text_for(refused.value, pytest.fail)
    )


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


# --- every preset maps its real-world attribute sets (names as the IdPs' admins and defaults spell them) -------

ADFS = "http://schemas.xmlsoap.org/claims/"
REAL_WORLD = [
    # (preset, attributes as sent, NameID, expected (email, first, last, groups))
    ("okta", {"Email": ("Jo@F.example",), "FirstName": ("Jo",), "LastName": ("Kim",), "groups": ("Partners",)},
     "00u1abc", ("jo@f.example", "Jo", "Kim", ("Partners",))),
    ("okta", {"email": ("jo@f.example",), "firstName": ("Jo",), "lastName": ("Kim",), "Groups": ("A", "B")},
     "00u1abc", ("jo@f.example", "Jo", "Kim", ("A", "B"))),
    ("okta", {"first_name": ("Jo",), "last_name": ("Kim",), "username": ("jo@f.example",)},
     "jokim", ("jo@f.example", "Jo", "Kim", ())),
    ("okta", {"givenName": ("Jo",), "surname": ("Kim",), "memberOf": ("Partners",)},
     "jo@f.example", ("jo@f.example", "Jo", "Kim", ("Partners",))),
    ("onelogin", {"User.email": ("r@k.example",), "User.FirstName": ("Ross",), "User.LastName": ("Kinder",),
                  "memberOf": ("Eng;Ops",)}, "r@k.example", ("r@k.example", "Ross", "Kinder", ("Eng;Ops",))),
    ("onelogin", {"Email": ("r@k.example",), "FirstName": ("Ross",), "LastName": ("Kinder",)},
     "12345", ("r@k.example", "Ross", "Kinder", ())),
    ("google", {"first_name": ("Ross",), "last_name": ("Kinder",), "groups": ("Staff",)},
     "ross@o.example", ("ross@o.example", "Ross", "Kinder", ("Staff",))),
    ("google", {"firstName": ("Ross",), "lastName": ("Kinder",), "phone": ()},
     "ross@o.example", ("ross@o.example", "Ross", "Kinder", ())),
    ("adfs", {ENTRA + "upn": ("paul@s.example",), ENTRA + "givenname": ("Paul",), ENTRA + "surname": ("Fraley",),
              ADFS + "Group": ("Domain Users", "Trainers")},
     "S-1-5-21-1", ("paul@s.example", "Paul", "Fraley", ("Domain Users", "Trainers"))),
    ("adfs", {ENTRA + "emailaddress": ("Paul@S.example",), ENTRA + "givenname": ("Paul",),
              ENTRA + "surname": ("Fraley",), "http://schemas.microsoft.com/ws/2008/06/identity/claims/role": ("Trainers",)},
     "S-1-5-21-1", ("paul@s.example", "Paul", "Fraley", ("Trainers",))),
    ("salesforce", {"userId": ("005xx0001",), "username": ("amy@acme.example",), "email": ("amy@acme.example",),
                    "is_portal_user": ("false",)}, "amy@acme.example", ("amy@acme.example", "", "", ())),
    ("salesforce", {"userId": ("005xx0001",), "username": ("amy@acme.example.sandbox",), "User.FirstName": ("Amy",),
                    "User.LastName": ("Ng",)}, "005xx0001", ("amy@acme.example.sandbox", "Amy", "Ng", ())),
    ("generic", {"urn:oid:0.9.2342.19200300.100.1.3": ("k@uni.example",), "urn:oid:2.5.4.42": ("Kim",),
                 "urn:oid:2.5.4.4": ("Lee",), "urn:oid:1.3.6.1.4.1.5923.1.5.1.1": ("staff", "library")},
     "_transient", ("k@uni.example", "Kim", "Lee", ("staff", "library"))),
    ("generic", {"urn:oid:1.3.6.1.4.1.5923.1.1.1.6": ("k@uni.example",), "givenName": ("Kim",), "sn": ("Lee",),
                 "isMemberOf": ("staff",)}, "_transient", ("k@uni.example", "Kim", "Lee", ("staff",))),
]  # fmt: skip


@pytest.mark.parametrize(("preset", "attributes", "name_id", "expected"), REAL_WORLD)
def test_each_preset_maps_its_real_world_attribute_sets(preset, attributes, name_id, expected):
    claims = map_claims(identity(name_id, **attributes), claim_names_for(preset, {}))
    assert (claims.email, claims.first_name, claims.last_name, claims.groups) == expected


def test_salesforce_keeps_is_portal_user_and_the_user_id():
    claims = map_claims(
        identity("amy@acme.example", userId=("005xx0001",), is_portal_user=("true",)),
        claim_names_for("salesforce", {}),
    )
    assert claims.object_id == "005xx0001"
    assert claims.extra == {"is_portal_user": ("true",)}


def test_attribute_names_match_without_regard_to_case_overrides_too():
    names = claim_names_for("generic", {"first_name": ["Vorname"], "extra": ["CostCenter"]})
    claims = map_claims(identity("a@b.example", VORNAME=("Jo",), costcenter=("42",)), names)
    assert claims.first_name == "Jo"
    assert claims.extra == {"CostCenter": ("42",)}


def test_values_of_names_differing_only_by_case_are_kept_together_in_order():
    claims = map_claims(
        identity("a@b.example", groups=("A",), Groups=("B", "A")), claim_names_for("okta", {})
    )
    assert claims.groups == ("A", "B")


def test_groups_overage_is_seen_whatever_the_case_of_the_claim_name():
    names = claim_names_for("entra", {})
    assert groups_overage_signalled(identity("x", **{ENTRA_GROUPS_LINK.upper(): ("https://graph",)}), names)
    assert not groups_overage_signalled(identity("x", **{ENTRA_GROUPS.upper(): ("g1",)}), names)
