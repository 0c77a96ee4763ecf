"""The steps of the sign-up form.

Step 1 begins the conversation (or joins it when the user comes back to
it); every later step requires it. Each step keeps its answers in the
conversation, so going back shows them again, and two tabs can fill in two
sign-ups without mixing them up.
"""

from __future__ import annotations

import re
import typing as t

from flask import Blueprint
from flask import redirect
from flask import render_template
from flask import request
from werkzeug.security import generate_password_hash
from werkzeug.wrappers import Response

from flask_conversation import begin_conversation
from flask_conversation import conversation
from flask_conversation import conversation_required
from flask_conversation import end_conversation
from flask_conversation import url_for_cid

bp = Blueprint("wizard", __name__)

#: The steps in order: endpoint and title.
STEPS: tuple[tuple[str, str], ...] = (
    ("wizard.account", "Account"),
    ("wizard.profile", "Profile"),
    ("wizard.preferences", "Preferences"),
    ("wizard.review", "Review"),
)

#: Without a sign-up in progress, a later step sends the user to step 1.
required = conversation_required(redirect_to="wizard.account")

_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
COUNTRIES = ("Austria", "Netherlands", "Poland", "Portugal", "Other")
TOPICS = ("Travel deals", "Product news", "Events")


@bp.context_processor
def steps() -> dict[str, t.Any]:
    """The step list for the progress bar."""
    return {"steps": STEPS}


def _page(template: str, form: t.Mapping[str, t.Any], errors: dict[str, str]) -> t.Any:
    page = render_template(template, form=form, errors=errors)
    return (page, 422) if errors else page


@bp.get("/")
def account() -> str:
    """Step 1: e-mail and password. Shows the earlier answers when the
    user comes back with the back link.
    """
    form = {"email": conversation.get("email", "")} if conversation.long_running else {}
    return render_template("account.html", form=form, errors={})


@bp.post("/")
@begin_conversation(join=True, description="Sign-up")
def account_post() -> t.Any:
    """Check step 1 and go on to step 2."""
    form = {"email": request.form.get("email", "").strip()}
    password = request.form.get("password", "")
    errors = {}
    if not _EMAIL_RE.fullmatch(form["email"]):
        errors["email"] = "Enter an e-mail address such as name@example.com."
    if len(password) < 8 and not (password == "" and "password_hash" in conversation):
        errors["password"] = "Use at least 8 characters."
    if errors:
        return _page("account.html", form, errors)
    conversation["email"] = form["email"]
    if password:
        # Only the hash is kept, like in a database.
        conversation["password_hash"] = generate_password_hash(password)
    return redirect(url_for_cid("wizard.profile"))


@bp.route("/profile", methods=["GET", "POST"])
@required
def profile() -> t.Any:
    """Step 2: name and country."""
    form = {"name": conversation.get("name", ""), "country": conversation.get("country", "")}
    errors = {}
    if request.method == "POST":
        form = {key: request.form.get(key, "").strip() for key in form}
        if not form["name"]:
            errors["name"] = "Tell us your name."
        if form["country"] not in COUNTRIES:
            errors["country"] = "Choose a country."
        if not errors:
            conversation.update(form)
            return redirect(url_for_cid("wizard.preferences"))
    return _page("profile.html", {**form, "countries": COUNTRIES}, errors)


@bp.route("/preferences", methods=["GET", "POST"])
@required
def preferences() -> t.Any:
    """Step 3: newsletter topics (optional)."""
    if request.method == "POST":
        conversation["topics"] = [t for t in request.form.getlist("topics") if t in TOPICS]
        return redirect(url_for_cid("wizard.review"))
    form = {"topics": conversation.get("topics", []), "all_topics": TOPICS}
    return render_template("preferences.html", form=form, errors={})


@bp.get("/review")
@required
def review() -> t.Any:
    """Step 4: everything at a glance, with links back to each step."""
    if "name" not in conversation:
        return redirect(url_for_cid("wizard.profile"))
    return render_template("review.html", form=dict(conversation), errors={})


@bp.post("/finish")
@required
@end_conversation()
def finish() -> Response:
    """Create the account. The welcome page after the redirect still reads
    the finished sign-up once.
    """
    return redirect(url_for_cid("wizard.welcome"))


@bp.get("/welcome")
def welcome() -> t.Any:
    """The end: greets the new user by name."""
    if "name" not in conversation:
        return redirect(url_for_cid("wizard.account"))
    return render_template("welcome.html", form=dict(conversation), errors={})
