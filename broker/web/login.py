"""GET /login/<portal>: the bookmarkable entry point; answers with a redirect to the upstream IdP."""

from __future__ import annotations

from flask import Blueprint, redirect, request

from broker.login import start_login
from broker.web.pages import runtime

bp = Blueprint("login", __name__)


@bp.get("/login/<portal>")
def login(portal: str):
    url = start_login(runtime(), portal, request.args.get("target"))
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = "no-store"
    return response
