"""Per-portal output profile: which fields and groups go out, under which names."""

from __future__ import annotations

import pytest

from broker.claims.profile import as_learnupon_date, custom_data, outgoing_attributes
from broker.config import CustomDataField, PortalSettings
from broker.model import Claims

ALEX = Claims(email="alex@contoso.example", first_name="Alex", last_name="Morgan", department="Sales",
              groups=("LU-Sales", "LU-All Staff", "Finance", "lu-partners"),
              extra={"hireDate": ("03/15/2021",), "badDate": ("soon",)})  # fmt: skip


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2021-03-15", "2021-03-15"), ("2021-03-15T10:00:00Z", "2021-03-15"), ("03/15/2021", "2021-03-15"),
     ("15.03.2021", "2021-03-15"), ("20210315", "2021-03-15"), ("soon", None), ("", None)],
)  # fmt: skip
def test_dates_become_yyyy_mm_dd(value, expected):
    assert as_learnupon_date(value) == expected


def test_custom_data_from_canonical_fields_and_upstream_attributes():
    fields = [CustomDataField(field="department", source="department"),
              CustomDataField(field="hire_date", source="hireDate", date=True),
              CustomDataField(field="start", source="badDate", date=True),
              CustomDataField(field="missing", source="nothing")]  # fmt: skip
    assert custom_data(ALEX, fields) == {"department": ("Sales",), "hire_date": ("2021-03-15",)}


def test_outgoing_attributes_send_only_what_the_profile_names():
    portal = PortalSettings(
        upstream="entra",
        attributes={"first_name": "FirstName", "last_name": "LastName", "email": None, "groups": "Groups"},
        groups={"allow": ["LU-*"], "strip_prefixes": ["LU-"]},
        static_attributes={"Region": ["EMEA"]},
        custom_data=[{"field": "department", "source": "department"}],
    )
    assert outgoing_attributes(ALEX, portal) == {
        "FirstName": ("Alex",), "LastName": ("Morgan",), "Groups": ("Sales", "All Staff", "partners"),
        "department": ("Sales",), "Region": ("EMEA",),
    }  # fmt: skip


def test_empty_values_are_left_out_rather_than_sent_blank():
    portal = PortalSettings(upstream="entra")
    attributes = outgoing_attributes(Claims(email="a@b.example"), portal)
    assert list(attributes) == ["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"]
