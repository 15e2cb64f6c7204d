"""`portals.<name>.provisioning` in broker.yaml: pre-provisioning through the LearnUpon REST API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from broker.config.urls import insecure_url_problem
from broker.errors import ConfigError

UserType = Literal["learner", "instructor", "manager", "admin"]


CourseRef = int | str  # an id, or an exact title


class UserTypeRule(BaseModel):
    """Members of `group` (a name or pattern, matched against the portal's groups) get `user_type` (the first
    matching rule wins)."""

    model_config = ConfigDict(extra="forbid")
    group: str = Field(min_length=1)
    user_type: UserType


class EnrollmentRule(BaseModel):
    """Members of any of `groups` (the portal's group names, or patterns) are enrolled on `courses` and
    `learning_paths` (ids or exact titles). `unenroll: true` removes the rule's unfinished course enrolments
    when the user leaves its groups; without it the broker never unenrols."""

    model_config = ConfigDict(extra="forbid")
    groups: list[str] = Field(
        min_length=1, description="the portal's group names, or patterns such as Sales*"
    )
    courses: list[CourseRef] = Field(default_factory=list)
    learning_paths: list[CourseRef] = Field(default_factory=list)
    unenroll: bool = Field(False, description="remove the course enrolments when the user leaves the groups")

    @model_validator(mode="after")
    def _check(self) -> EnrollmentRule:
        if not self.courses and not self.learning_paths:
            raise ValueError("name at least one course or learning path")
        for ref in (*self.courses, *self.learning_paths):
            if isinstance(ref, str) and not ref.strip():
                raise ValueError("course and learning path titles must not be empty")
            if isinstance(ref, int) and ref <= 0:
                raise ValueError("course and learning path ids are positive numbers")
        if self.unenroll and self.learning_paths:
            # LearnUpon documents no call that removes a learning path enrolment
            raise ValueError("unenroll: true works for courses only; move the learning paths to another rule")
        return self


class ProvisioningSettings(BaseModel):
    """One portal's pre-provisioning through the LearnUpon REST API.

    Group names are the portal's (after its allow-list, prefix stripping, renames and additions) and match
    case-insensitively, as names or shell-style patterns (`LU-*`, `Course ?`). A membership is removed only
    when its group is named in `managed_groups` or `managed_group_patterns` and the portal's groups for the
    user no longer include it. `user_type` is managed only when `user_type_rules` is not empty (new users are
    learners otherwise), so admins made in LearnUpon are not demoted by a login. `membership_type` (LearnUpon's
    Associations feature: `Member` or `Non-member`) is sent only when set.
    """

    # Inputs stay out of error text: a base_url could carry a key. (An enclosing model needs the same flag.)
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    enabled: bool = False
    base_url: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    membership_type: Literal["Member", "Non-member"] | None = None
    managed_groups: list[str] = Field(default_factory=list)
    managed_group_patterns: list[str] = Field(default_factory=list)
    user_type_rules: list[UserTypeRule] = Field(default_factory=list)
    enrollments: list[EnrollmentRule] = Field(default_factory=list)
    on_failure: Literal["continue", "block"] = "continue"
    budget_seconds: float = Field(default=5.0, gt=0, le=120)
    state_ttl_seconds: int = Field(default=86400, ge=0)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://PORTAL.learnupon.com/api/v1/")
        if insecure_url_problem(value):  # the API key pair goes with every request
            raise ValueError(
                "must use https (plain http only to 127.0.0.1 / localhost, for the demo and tests)"
            )
        if parts.username or parts.password:
            raise ValueError(
                "must not contain credentials; name environment variables in username_env/password_env"
            )
        return value if value.endswith("/") else value + "/"

    @field_validator("managed_group_patterns")
    @classmethod
    def _check_patterns(cls, value: list[str]) -> list[str]:
        if any(not p.strip() for p in value):
            raise ValueError("patterns must not be empty")
        return value

    @model_validator(mode="after")
    def _check_credentials_named(self) -> ProvisioningSettings:
        if self.enabled and not (self.username_env and self.password_env):
            raise ValueError("username_env and password_env are required when provisioning is enabled")
        return self

    def api_base_url(self, portal: str) -> str:
        """`base_url`, or `https://<portal>.learnupon.com/api/v1/`."""
        return self.base_url or f"https://{portal}.learnupon.com/api/v1/"

    def credentials(self, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
        """The API key pair from the environment variables named in the settings."""
        environ = os.environ if environ is None else environ
        missing = [
            name for name in (self.username_env, self.password_env) if not name or not environ.get(name)
        ]
        if missing:
            raise ConfigError(f"provisioning: environment variable(s) {', '.join(map(str, missing))} not set")
        return environ[self.username_env], environ[self.password_env]  # type: ignore[index]
