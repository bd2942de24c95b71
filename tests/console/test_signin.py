"""Console sign-in over real HTTP, without a browser: cookies, CSRF, throttling, redirects,
sign-out, set-password links, and the server refusing what a role does not allow.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from keyplane.domain.models import Role

from conftest import SEEN, CreatedKeys, Org, Server

PASSWORD = "correct horse battery staple"
# Every visitor connects from its own loopback address: the sign-in limiter also counts
# failures per address, and the servers (and their limiters) live for the whole session.
ADDRESSES = (f"127.83.{n // 250}.{n % 250 + 1}" for n in itertools.count())
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Visitor:
    """An httpx client that keeps the console's cookies itself.

    The cookies are ``Secure`` and the test server speaks plain http on loopback, so httpx
    (rightly) would never send them back: this class reads ``Set-Cookie`` and sends
    ``Cookie`` by hand, like a browser would over https.
    """

    def __init__(self, server: Server, seen: CreatedKeys = SEEN) -> None:
        self.address = next(ADDRESSES)
        self.cookies: dict[str, str] = {}
        self.seen = seen  # the passwords and tokens it handles, for the leak search
        self.http = httpx.Client(
            base_url=server.base_url,
            transport=httpx.HTTPTransport(local_address=self.address),
            timeout=15,
        )

    def close(self) -> None:
        self.http.close()

    def get(self, path: str) -> httpx.Response:
        return self._send("GET", path)

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self._send("POST", path, data)

    def _send(self, method: str, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        self.seen.note_form(data or {})
        self.seen.note_set_password_link(path)
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        response = self.http.request(
            method, path, data=data, headers={"Cookie": cookie} if cookie else {}
        )
        for name, attributes in set_cookies(response).items():
            if attributes.get("max-age") == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = attributes["value"]
                if name == "kp_session":
                    self.seen.add_token(attributes["value"])
        return response

    def csrf_token(self, path: str = "/console/keys") -> str:
        """The token a page's forms carry (the sign-in form's, or the session's)."""
        return form_token(self.get(path))

    def sign_in(self, email: str, password: str, **extra: str) -> httpx.Response:
        token = self.csrf_token("/console/login")
        return self.post(
            "/console/login",
            {"csrf_token": token, "email": email, "password": password, **extra},
        )


def set_cookies(response: httpx.Response) -> dict[str, dict[str, Any]]:
    """Each cookie a response sets: its value and attributes, names lower-cased."""
    found: dict[str, dict[str, Any]] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            attributes: dict[str, Any] = {k: v for k, v in morsel.items() if v}
            found[name] = {"value": morsel.value, **attributes}
    return found


def form_token(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    match = TOKEN.search(response.text)
    assert match, response.text
    return match.group(1)


def alert(response: httpx.Response) -> str:
    match = re.search(r'<p class="form-error" role="alert"[^>]*>([^<]*)</p>', response.text)
    assert match, response.text
    return match.group(1)


def fresh_email(label: str) -> str:
    return f"{label}-{secrets.token_hex(4)}@example.com"


def person(org: Org, role: Role = "developer", password: str | None = PASSWORD) -> str:
    """A user of ``org`` made through the REST API with the owner's key; their email."""
    body: dict[str, Any] = {"email": fresh_email(role), "name": role.title(), "role": role}
    if password is not None:
        body["password"] = password
    response = org.api.post("/v1/users", json=body)
    assert response.status_code == 201, response.text
    return str(body["email"])


Visitors = Callable[[], Visitor]


@pytest.fixture
def visitor(server: Server) -> Iterator[Visitor]:
    made = Visitor(server)
    yield made
    made.close()


@pytest.fixture
def visitors(server: Server) -> Iterator[Visitors]:
    """Make as many visitors as a test needs, each from its own address."""
    made: list[Visitor] = []

    def make() -> Visitor:
        made.append(Visitor(server))
        return made[-1]

    yield make
    for one in made:
        one.close()


def test_the_login_page_sets_a_csrf_cookie_its_form_repeats(visitor: Visitor) -> None:
    response = visitor.get("/console/login")

    assert response.status_code == 200
    cookie = set_cookies(response)["kp_login_csrf"]
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    assert cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/console"
    assert form_token(response) == cookie["value"]
    assert len(cookie["value"]) >= 40
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


def test_signing_in_sets_a_strict_session_cookie_and_goes_to_the_keys(
    org: Org, visitor: Visitor
) -> None:
    email = person(org, "owner")

    response = visitor.sign_in(email, PASSWORD)

    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/keys"
    cookies = set_cookies(response)
    session = cookies["kp_session"]
    assert session["httponly"] is True
    assert session["secure"] is True
    assert session["samesite"].lower() == "strict"
    assert session["path"] == "/"
    assert int(session["max-age"]) == 12 * 3600
    assert cookies["kp_login_csrf"]["max-age"] == "0"  # the sign-in token is spent
    keys = visitor.get("/console/keys")
    assert keys.status_code == 200
    assert "Owner" in keys.text
    assert email in keys.text


def test_the_email_is_matched_whatever_its_case(org: Org, visitor: Visitor) -> None:
    email = person(org)

    assert visitor.sign_in(f"  {email.upper()} ", PASSWORD).status_code == 303


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
    org: Org, visitors: Visitors
) -> None:
    email = person(org)
    stranger = fresh_email("nobody")

    wrong_password = visitors().sign_in(email, "not the password at all")
    unknown_email = visitors().sign_in(stranger, "not the password at all")

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert alert(wrong_password) == alert(unknown_email) == "The email or password is incorrect."
    assert "kp_session" not in set_cookies(wrong_password)
    assert "kp_session" not in set_cookies(unknown_email)

    def page(response: httpx.Response, typed: str) -> str:
        return TOKEN.sub("", response.text).replace(typed, "EMAIL")

    assert page(wrong_password, email) == page(unknown_email, stranger)


def test_an_invited_user_without_a_password_cannot_sign_in(org: Org, visitor: Visitor) -> None:
    email = person(org, password=None)

    response = visitor.sign_in(email, "")

    assert response.status_code == 401
    assert alert(response) == "The email or password is incorrect."


@pytest.mark.parametrize(
    ("send_cookie", "send_token"),
    [(False, False), (True, False), (False, True), ("other", True), (True, "wrong")],
)
def test_a_login_without_its_csrf_token_is_refused(
    org: Org, visitors: Visitors, send_cookie: object, send_token: object
) -> None:
    email = person(org)
    visitor = visitors()
    token = visitor.csrf_token("/console/login")
    if send_cookie == "other":  # a token minted for another browser
        visitor.cookies["kp_login_csrf"] = visitors().csrf_token("/console/login")
    elif not send_cookie:
        visitor.cookies.pop("kp_login_csrf")
    form = {"email": email, "password": PASSWORD}
    if send_token:
        form["csrf_token"] = token if send_token is True else "wrong" + token

    response = visitor.post("/console/login", form)

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "could not be accepted" in response.text
    assert "kp_session" not in set_cookies(response)
    assert "kp_session" not in visitor.cookies


def test_after_five_failures_an_address_is_throttled_for_that_account_only(
    org: Org, visitor: Visitor, visitors: Visitors
) -> None:
    email = person(org)
    for _ in range(5):
        assert visitor.sign_in(email, "not the password at all").status_code == 401

    refused = visitor.sign_in(email, PASSWORD)  # even the right password, from that address

    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "Too many failed attempts" in alert(refused)
    assert "kp_session" not in set_cookies(refused)
    # Knowing the email is not enough to lock its owner out: from their own address they
    # sign in; and the guesser's address still signs in to other accounts.
    assert visitors().sign_in(email, PASSWORD).status_code == 303
    assert visitor.sign_in(person(org), PASSWORD).status_code == 303


def test_an_address_carries_more_failures_than_an_account_before_it_is_throttled(
    org: Org, visitor: Visitor, visitors: Visitors
) -> None:
    # An address may be an office or a proxy: five typos there must not lock everyone out.
    for _ in range(5):
        assert visitor.sign_in(fresh_email("typo"), "not the password").status_code == 401
    assert visitor.sign_in(person(org), PASSWORD).status_code == 303


def test_after_twenty_failures_an_address_is_throttled_for_every_account(
    org: Org, visitor: Visitor, visitors: Visitors
) -> None:
    # The person exists first: making one hashes a password, and the first back-off is 1 s,
    # so on a loaded machine making them in between could outlast it.
    email = person(org)
    for _ in range(20):
        assert visitor.sign_in(fresh_email("guess"), "not the password").status_code == 401

    refused = visitor.sign_in(email, PASSWORD)

    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert visitors().sign_in(email, PASSWORD).status_code == 303


@pytest.mark.parametrize("cookie", [None, "not-a-session"])
def test_the_console_sends_strangers_to_sign_in(visitor: Visitor, cookie: str | None) -> None:
    if cookie:
        visitor.cookies["kp_session"] = cookie

    response = visitor.get("/console/keys")

    assert response.status_code == 303
    location = httpx.URL(response.headers["location"])
    assert location.path == "/console/login"
    assert location.params["next"] == "/console/keys"
    assert "next=%2Fconsole%2Fkeys" in response.headers["location"]


def test_the_page_asked_for_keeps_its_query_through_sign_in(visitor: Visitor) -> None:
    response = visitor.get("/console/keys?status=expired")
    location = httpx.URL(response.headers["location"])
    assert location.params["next"] == "/console/keys?status=expired"


@pytest.mark.parametrize(
    ("next_", "landing"),
    [
        ("/console/users", "/console/users"),
        ("https://evil.example", "/console/keys"),
        ("//evil.example/console", "/console/keys"),
        ("/console//evil.example", "/console/keys"),
        ("/v1/keys", "/console/keys"),
        ("", "/console/keys"),
    ],
)
def test_next_leads_back_into_the_console_and_nowhere_else(
    org: Org, visitor: Visitor, next_: str, landing: str
) -> None:
    form = visitor.get("/console/login?" + urlencode({"next": next_}))
    assert f'name="next" value="{landing}"' in form.text

    response = visitor.sign_in(person(org), PASSWORD, next=next_)

    assert response.status_code == 303
    assert response.headers["location"] == landing


def test_signing_out_needs_the_csrf_token_and_ends_the_session(org: Org, visitor: Visitor) -> None:
    assert visitor.sign_in(person(org), PASSWORD).status_code == 303
    session = visitor.cookies["kp_session"]
    token = visitor.csrf_token()

    forged = visitor.post("/console/logout", {})
    assert forged.status_code == 403
    assert visitor.get("/console/keys").status_code == 200  # still signed in

    response = visitor.post("/console/logout", {"csrf_token": token})

    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?signed_out=1"
    assert set_cookies(response)["kp_session"]["max-age"] == "0"
    visitor.cookies["kp_session"] = session  # a copy kept from before signing out
    assert visitor.get("/console/keys").headers["location"].startswith("/console/login")


def test_a_session_token_does_not_work_as_its_csrf_token(org: Org, visitor: Visitor) -> None:
    assert visitor.sign_in(person(org), PASSWORD).status_code == 303

    response = visitor.post("/console/logout", {"csrf_token": visitor.cookies["kp_session"]})

    assert response.status_code == 403
    assert visitor.get("/console/keys").status_code == 200


def test_a_set_password_link_sets_the_password_once(org: Org, visitor: Visitor) -> None:
    email = fresh_email("invited")
    invited = org.api.post("/v1/users", json={"email": email, "role": "viewer"}).json()
    link = invited["set_password_url"]

    shown = visitor.get(link)
    assert shown.status_code == 200
    assert shown.headers["referrer-policy"] == "no-referrer"
    token = form_token(shown)
    assert set_cookies(shown)["kp_login_csrf"]["value"] == token

    response = visitor.post(link, {"csrf_token": token, "password": PASSWORD, "confirm": PASSWORD})

    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/login?password_set=1"
    assert org.api.get(f"/v1/users/{invited['id']}").json()["has_password"] is True
    assert visitor.sign_in(email, PASSWORD).status_code == 303
    visitor.get(link)
    token = visitor.cookies["kp_login_csrf"]
    reused = visitor.post(link, {"csrf_token": token, "password": "x" * 20, "confirm": "x" * 20})
    assert reused.status_code == 404
    assert "already used or expired" in reused.text
    assert visitor.sign_in(email, PASSWORD).status_code == 303  # the first password stands


@pytest.mark.parametrize(
    ("password", "confirm", "field_message"),
    [
        (PASSWORD, PASSWORD + "!", "The two passwords differ."),
        ("short", "short", "at least 12 characters"),
    ],
)
def test_a_set_password_form_with_a_mistake_keeps_the_link_usable(
    org: Org, visitor: Visitor, password: str, confirm: str, field_message: str
) -> None:
    link = org.api.post("/v1/users", json={"email": fresh_email("invited")}).json()[
        "set_password_url"
    ]
    token = form_token(visitor.get(link))

    response = visitor.post(link, {"csrf_token": token, "password": password, "confirm": confirm})

    assert response.status_code == 422
    assert field_message in response.text
    token = visitor.cookies["kp_login_csrf"]  # the page renewed it
    assert f'value="{token}"' in response.text
    done = visitor.post(link, {"csrf_token": token, "password": PASSWORD, "confirm": PASSWORD})
    assert done.status_code == 303


def test_a_set_password_form_needs_its_csrf_token(org: Org, visitor: Visitor) -> None:
    invited = org.api.post("/v1/users", json={"email": fresh_email("invited")}).json()
    visitor.get(invited["set_password_url"])

    response = visitor.post(
        invited["set_password_url"], {"password": PASSWORD, "confirm": PASSWORD}
    )

    assert response.status_code == 403
    assert org.api.get(f"/v1/users/{invited['id']}").json()["has_password"] is False


def test_an_unknown_set_password_link_is_not_found(visitor: Visitor) -> None:
    link = f"/console/set-password/{secrets.token_urlsafe(32)}"
    visitor.get(link)

    posted = visitor.post(
        link,
        {"csrf_token": visitor.cookies["kp_login_csrf"], "password": PASSWORD, "confirm": PASSWORD},
    )
    assert posted.status_code == 404
    assert "already used or expired" in posted.text


def test_a_viewer_cannot_create_a_key_even_by_forcing_the_form(org: Org, visitor: Visitor) -> None:
    assert visitor.sign_in(person(org, "viewer"), PASSWORD).status_code == 303
    keys_page = visitor.get("/console/keys")
    assert "/console/keys/new" not in keys_page.text  # the page offers no way to do it
    before = {k["id"] for k in org.api.get("/v1/keys").json()["data"]}

    response = visitor.post(
        "/console/keys",
        {"csrf_token": form_token(keys_page), "name": "forced", "expiration": "30"},
    )

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "api_keys:write" in response.text
    assert {k["id"] for k in org.api.get("/v1/keys").json()["data"]} == before


def test_a_developer_cannot_invite_users(org: Org, visitor: Visitor) -> None:
    assert visitor.sign_in(person(org, "developer"), PASSWORD).status_code == 303
    token = visitor.csrf_token()
    email = fresh_email("smuggled")

    response = visitor.post(
        "/console/users", {"csrf_token": token, "email": email, "role": "viewer"}
    )

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "users:write" in response.text
    emails = {u["email"] for u in org.api.get("/v1/users").json()["data"]}
    assert email not in emails
    assert visitor.get("/console/users").status_code == 403  # developers do not read users


def test_a_role_change_signs_the_user_out(org: Org, visitor: Visitor) -> None:
    email = person(org, "developer")
    assert visitor.sign_in(email, PASSWORD).status_code == 303
    user_id = next(u["id"] for u in org.api.get("/v1/users").json()["data"] if u["email"] == email)

    org.api.patch(f"/v1/users/{user_id}", json={"role": "viewer"})

    assert visitor.get("/console/keys").status_code == 303
    assert visitor.sign_in(email, PASSWORD).status_code == 303
    assert "viewer" in visitor.get("/console/keys").text


def two_org_person(org: Org, other_org: Org) -> str:
    """A person who signs in to ``org`` and has joined ``other_org`` through its link."""
    email = person(org)
    invited = other_org.api.post("/v1/users", json={"email": email, "role": "viewer"}).json()
    token = invited["set_password_url"].removeprefix("/console/set-password/")
    other_org.server.kp.users.set_password_with_token(token, PASSWORD)
    return email


def chooser_forms(response: httpx.Response) -> dict[str, str]:
    """Organization name -> the user id its chooser button posts."""
    found = re.findall(
        r'name="user_id" value="([^"]+)">\s*<button[^>]*>([^<]+)</button>', response.text
    )
    return {name: user_id for user_id, name in found}


def test_a_person_in_several_organizations_chooses_one_after_signing_in(
    org: Org, other_org: Org, visitor: Visitor
) -> None:
    email = two_org_person(org, other_org)

    signed_in = visitor.sign_in(email, PASSWORD, next="/console/apps")

    assert signed_in.status_code == 303
    assert httpx.URL(signed_in.headers["location"]).path == "/console/organizations"
    assert "kp_session" in visitor.cookies
    # Until chosen, every console page leads to the chooser (through the sign-in page).
    assert visitor.get("/console/keys").headers["location"].startswith("/console/login")
    assert visitor.get("/console/login").headers["location"].startswith("/console/organizations")
    chooser = visitor.get(signed_in.headers["location"])
    assert chooser.status_code == 200
    forms = chooser_forms(chooser)
    names = {o.api.get("/v1/org").json()["name"]: o.id for o in (org, other_org)}
    assert set(forms) == set(names)
    other_name = next(n for n, i in names.items() if i == other_org.id)

    chosen = visitor.post(
        "/console/organizations",
        {"csrf_token": form_token(chooser), "user_id": forms[other_name], "next": "/console/apps"},
    )

    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/console/apps"
    page = visitor.get("/console/keys")
    assert page.status_code == 200
    assert "viewer" in page.text  # their role in the organization they chose


def test_the_chooser_refuses_an_organization_the_person_is_not_in(
    org: Org, other_org: Org, visitor: Visitor
) -> None:
    email = two_org_person(org, other_org)
    visitor.sign_in(email, PASSWORD)
    chooser = visitor.get("/console/organizations")
    strangers_membership = org.owner_id

    refused = visitor.post(
        "/console/organizations",
        {"csrf_token": form_token(chooser), "user_id": strangers_membership},
    )

    assert refused.status_code == 404
    assert "not a member of that organization" in refused.text
    assert visitor.get("/console/keys").status_code == 303  # still nothing chosen


def test_the_chooser_needs_its_csrf_token(org: Org, other_org: Org, visitor: Visitor) -> None:
    email = two_org_person(org, other_org)
    visitor.sign_in(email, PASSWORD)
    forms = chooser_forms(visitor.get("/console/organizations"))

    refused = visitor.post("/console/organizations", {"user_id": next(iter(forms.values()))})

    assert refused.status_code == 403
    assert visitor.get("/console/keys").status_code == 303


def test_the_chooser_without_a_session_sends_to_sign_in(visitor: Visitor) -> None:
    response = visitor.get("/console/organizations")

    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")


def test_a_person_in_one_organization_is_not_asked_to_choose(org: Org, visitor: Visitor) -> None:
    signed_in = visitor.sign_in(person(org), PASSWORD)

    assert signed_in.headers["location"] == "/console/keys"


def test_a_link_from_a_second_organization_asks_for_the_existing_password(
    org: Org, other_org: Org, visitor: Visitor
) -> None:
    email = person(org)
    invited = other_org.api.post("/v1/users", json={"email": email}).json()
    link = invited["set_password_url"]

    shown = visitor.get(link)
    assert shown.status_code == 200
    assert "already has a keyplane password" in shown.text
    assert 'name="confirm"' not in shown.text
    joined = visitor.post(link, {"csrf_token": form_token(shown), "password": PASSWORD})

    assert joined.status_code == 303
    assert joined.headers["location"] == "/console/login?joined=1"
    assert other_org.api.get(f"/v1/users/{invited['id']}").json()["has_password"] is True


def test_a_wrong_password_on_a_second_organizations_link_burns_it(
    org: Org, other_org: Org, visitor: Visitor
) -> None:
    email = person(org)
    invited = other_org.api.post("/v1/users", json={"email": email}).json()
    link = invited["set_password_url"]
    token = form_token(visitor.get(link))

    refused = visitor.post(link, {"csrf_token": token, "password": "a takeover attempt!"})

    assert refused.status_code == 422
    assert "no longer works" in refused.text
    assert visitor.get(link).status_code == 404
    assert visitor.sign_in(email, PASSWORD).status_code == 303  # their password stands
    assert other_org.api.get(f"/v1/users/{invited['id']}").json()["has_password"] is False


def test_a_right_password_with_no_accepted_membership_says_what_to_do(
    org: Org, other_org: Org, visitor: Visitor
) -> None:
    email = person(org)
    other_org.api.post("/v1/users", json={"email": email})  # invited, link not used
    users = org.api.get("/v1/users", params={"limit": 100}).json()["data"]
    org.api.delete(f"/v1/users/{next(u['id'] for u in users if u['email'] == email)}")

    response = visitor.sign_in(email, PASSWORD)

    assert response.status_code == 403
    assert "not a member of any organization yet" in alert(response)
    assert "kp_session" not in visitor.cookies


def test_a_person_can_sign_out_before_choosing_an_organization(
    org: Org, other_org: Org, visitor: Visitor
) -> None:
    visitor.sign_in(two_org_person(org, other_org), PASSWORD)
    chooser = visitor.get("/console/organizations")
    session_token = re.search(
        r'action="/console/logout"[^>]*>\s*<input type="hidden" name="csrf_token" value="([^"]+)"',
        chooser.text,
    )
    assert session_token is not None

    assert visitor.post("/console/logout", {"csrf_token": form_token(chooser)}).status_code == 403
    response = visitor.post("/console/logout", {"csrf_token": session_token.group(1)})

    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?signed_out=1"
    assert visitor.get("/console/organizations").status_code == 303


def test_the_chooser_switches_a_signed_in_session_to_another_organization(
    org: Org, other_org: Org, visitor: Visitor
) -> None:
    visitor.sign_in(two_org_person(org, other_org), PASSWORD)
    by_name = {o.api.get("/v1/org").json()["name"]: o for o in (org, other_org)}
    for name, chosen_org in [*by_name.items(), *by_name.items()]:
        chooser = visitor.get("/console/organizations")
        user_id = chooser_forms(chooser)[name]
        posted = visitor.post(
            "/console/organizations", {"csrf_token": form_token(chooser), "user_id": user_id}
        )
        assert posted.status_code == 303
        role = "developer" if chosen_org is org else "viewer"  # two_org_person's roles
        assert f'<span class="role">{role}</span>' in visitor.get("/console/keys").text
