"""Settings of the learner pages: languages, texts given per language, the support contact and branding.

A text a learner reads (a portal's name, description, no-access message, the support contact's name) is either
one string or one string per language (`{en: ..., de: ...}`); pages pick the learner's language.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from broker.config.base import StrictModel

# The languages the learner pages ship catalogues for (broker/translations/); the first is the fallback.
LANGUAGES = ("en", "de", "fr", "es", "pt_BR", "ja")
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def language_code(value: str) -> str:
    """`pt-BR`, `pt_br` and `pt_BR` are one language; unknown codes are refused with the list of known ones."""
    wanted = value.strip().replace("-", "_").lower()
    for code in LANGUAGES:
        if code.lower() == wanted:
            return code
    raise ValueError(f"unknown language {value!r} (known: {', '.join(LANGUAGES)})")


class LocalizedText(str):
    """A string (its default-language form) that also knows its other languages."""

    translations: dict[str, str]

    def __new__(cls, default: str, translations: dict[str, str] | None = None) -> LocalizedText:
        text = super().__new__(cls, default)
        text.translations = dict(translations or {})
        return text

    def in_language(self, language: str) -> str:
        return self.translations.get(language) or str(self)

    def __eq__(self, other: object) -> bool:  # a reload must see a changed translation
        same_text = str.__eq__(self, other)
        if same_text is not True or not isinstance(other, LocalizedText):
            return same_text
        return self.translations == other.translations

    __hash__ = str.__hash__


def _localized(value: Any) -> LocalizedText:
    if isinstance(value, LocalizedText):
        return value
    if isinstance(value, str):
        return LocalizedText(value)
    if isinstance(value, dict) and value:
        forms: dict[str, str] = {}
        for key, text in value.items():
            code = language_code(str(key))
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{key}: give the text in that language as a non-empty string")
            forms[code] = text
        default = forms.get(LANGUAGES[0]) or next(iter(forms.values()))
        return LocalizedText(default, forms)
    raise ValueError("give a string, or one string per language code (en: ..., de: ...)")


Text = Annotated[
    LocalizedText,
    PlainValidator(_localized),
    PlainSerializer(lambda text: text.translations or str(text)),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "object"}]}),
]


class SupportContact(StrictModel):
    """Who a stuck learner contacts: a name and an e-mail address or a web page (or both)."""

    name: Text
    email: str | None = None
    url: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$", value):
            raise ValueError("must be an e-mail address like it-help@contoso.com")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s<>\"]+$", value):
            raise ValueError("must be an absolute http(s) URL")
        return value

    @model_validator(mode="after")
    def _somewhere(self) -> SupportContact:
        if not self.email and not self.url:
            raise ValueError("give email, url or both: the learner needs somewhere to go")
        return self

    @property
    def href(self) -> str:
        return self.url or f"mailto:{self.email}"


class Branding(StrictModel):
    """How a portal's learner pages look: its logo, its colour (buttons, links) and the page title."""

    logo_url: str | None = Field(None, description="an https:// image URL (allowed by the page's CSP)")
    logo_file: Path | None = Field(None, description="an image file the broker serves itself")
    logo_alt: Text | None = Field(None, description="the logo's text alternative; default: the page title")
    primary_color: str | None = Field(None, description="#rrggbb; buttons and links (white text on it)")
    page_title: Text | None = Field(None, description="shown above every page and in the browser's title")

    @field_validator("primary_color")
    @classmethod
    def _colour(cls, value: str | None) -> str | None:
        if value is not None and not HEX_COLOUR.match(value):
            raise ValueError("must be a colour written #rrggbb, like #1f5fbf")
        return value.lower() if value else value

    @field_validator("logo_url")
    @classmethod
    def _logo_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https://[^/\s<>\"']+(/[^\s<>\"']*)?$", value):
            raise ValueError("must be an absolute https:// URL")
        return value

    @field_validator("logo_file")
    @classmethod
    def _logo_file(cls, value: Path | None) -> Path | None:
        if value is not None and value.suffix.lower() not in IMAGE_TYPES:
            raise ValueError(f"must be an image file ({', '.join(sorted(IMAGE_TYPES))})")
        if value is not None and not value.is_file():
            raise ValueError("file not found (a relative path is relative to the config file's folder)")
        return value

    @model_validator(mode="after")
    def _one_logo(self) -> Branding:
        if self.logo_url and self.logo_file:
            raise ValueError("give logo_url or logo_file, not both")
        return self


IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".webp": "image/webp", ".gif": "image/gif"}  # fmt: skip


class LearnerPages(StrictModel):
    """The defaults for every portal's learner pages (a portal's own settings win)."""

    default_language: str = Field(
        "en", description="when neither ?lang= nor Accept-Language names one we have"
    )
    support: SupportContact | None = None
    branding: Branding = Field(default_factory=Branding)

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        return language_code(value)


def optional_language(value: str | None) -> str | None:
    return None if value is None else language_code(value)
