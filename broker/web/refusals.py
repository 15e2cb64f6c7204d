"""The pages every failure ends in, in the learner's language: a plain title that says what happened, what to do,
a next step, and a reference id that is also in the log line. Refusals take their status and texts from
broker.web.error_table (by class); HTTP errors theirs from HTTP_ERRORS below (by status)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask, Response, current_app, request
from flask_babel import gettext, lazy_gettext
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from broker.config.pages import LocalizedText
from broker.errors import LoginRefused, SamlRejected, StoreUnavailable, new_reference
from broker.ops.activity import record_refusal
from broker.web.error_table import TABLE, shown_for
from broker.web.i18n import learner_language
from broker.web.learner import learner_page
from broker.web.pages import error_page as admin_error_page
from broker.web.pages import runtime

log = logging.getLogger("broker.web")


@dataclass(frozen=True)
class Wording:
    title: str
    message: str


HTTP_ERRORS: dict[int, Wording] = {
    400: Wording(lazy_gettext("This request could not be read"),
                 lazy_gettext("Something in the address or the form was missing or damaged. Please start again.")),
    404: Wording(lazy_gettext("We can't find this page"),
                 lazy_gettext("Please check the address, or start again from your learning portal's sign-in link.")),
    405: Wording(lazy_gettext("This page can't be opened this way"),
                 lazy_gettext("Please start again from your learning portal's sign-in link.")),
    413: Wording(lazy_gettext("The sign-in response was too large"),
                 lazy_gettext("The sign-in response was too large to accept. Please start again; if it keeps "
                              "happening, contact support.")),
    429: Wording(lazy_gettext("Too many sign-in attempts"),
                 lazy_gettext("Please wait a minute and try again.")),
    500: Wording(lazy_gettext("Something went wrong on our side"),
                 lazy_gettext("Please try again; if it keeps happening, contact support.")),
    503: Wording(lazy_gettext("Sign-in is briefly unavailable"), lazy_gettext("Please try again in a minute.")),
}  # fmt: skip


def wording_for(exc: LoginRefused | StoreUnavailable) -> tuple[int, Wording]:
    """The status and the wording broker.web.error_table gives this error, in the learner's language."""
    shown = shown_for(type(exc)) or TABLE[LoginRefused]
    message = shown.text_for(exc, lambda: runtime().config)
    if isinstance(message, LocalizedText):  # configured (the no-access message): per language, or as written
        message = message.in_language(learner_language()) if message.translations else gettext(message)  # noqa: INT001 (the default's msgid is in the table's catalogue entries)
    return shown.status, Wording(shown.title, message)


def error_page(status: int, wording: Wording, reference: str, *, portal: str | None = None) -> Response:
    return learner_page("error.html", status, portal=portal, title=str(wording.title),
                        message=str(wording.message), reference=reference)  # fmt: skip


def http_error_page(status: int, reference: str) -> Response:
    return error_page(status, HTTP_ERRORS.get(status) or HTTP_ERRORS[400 if status < 500 else 500], reference)


def _login_refused(exc: LoginRefused) -> Response:
    what = "SAML response rejected" if isinstance(exc, SamlRejected) else "login refused"
    log.warning(
        "%s [%s] check=%s reason=%s",
        what,
        exc.reference,
        exc.check,
        exc.reason,
        extra={"reference": exc.reference, "check": exc.check, "path": request.path},
    )
    record_refusal(runtime(), exc, request.path)
    status, wording = wording_for(exc)
    return error_page(status, wording, exc.reference)


def _store_unavailable(exc: StoreUnavailable) -> Response:
    reference = new_reference()
    log.error("state store unavailable [%s] %s", reference, exc, extra={"reference": reference})
    status, wording = wording_for(exc)
    response = error_page(status, wording, reference)
    response.headers["Retry-After"] = "60"
    return response


def _too_large(exc: RequestEntityTooLarge) -> Response:
    reference = new_reference()
    log.warning("request refused [%s] check=size reason=body larger than %s bytes on %s", reference,
                current_app.config.get("MAX_CONTENT_LENGTH"), request.path)  # fmt: skip
    return http_error_page(413, reference)


def _http_error(exc: HTTPException) -> Response:
    reference = new_reference()
    status = exc.code or 400
    log.info("%s %s -> %s [%s]", request.method, request.path, status, reference,
             extra={"reference": reference})  # fmt: skip
    if request.path.startswith("/admin/"):  # the admin area stays English and keeps the precise description
        response = admin_error_page(status, exc.name, exc.description or exc.name, reference)
    else:
        response = http_error_page(status, reference)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unexpected(exc: Exception) -> Response:
    reference = new_reference()
    log.exception("unexpected error [%s] on %s %s", reference, request.method, request.path,
                  extra={"reference": reference})  # fmt: skip
    try:
        return http_error_page(500, reference)
    except Exception:  # the learner page itself failed (e.g. a broken reload): plain text, still no traceback
        log.exception("error page failed [%s]", reference)
        return Response(f"Something went wrong. Reference: {reference}\n", status=500, mimetype="text/plain")


def register(app: Flask) -> None:
    app.register_error_handler(LoginRefused, _login_refused)
    app.register_error_handler(StoreUnavailable, _store_unavailable)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
