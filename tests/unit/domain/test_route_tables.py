"""domain/routes.py: the route-table grammar, first-match-wins, deny by default, and the
request-path normalisation that keeps a path from walking around a rule."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.catalogue import Catalogue
from keyplane.domain.errors import InvalidInput
from keyplane.domain.routes import (
    EMPTY,
    ROUTES_MAX,
    Route,
    RouteTable,
    check_route_table,
    compiled,
    normalised_path,
)

TABLE = RouteTable(
    (
        Route("GET", "/models/*", ("models:read",)),
        Route("GET", "/models/**", ("models:read", "models:list")),
        Route("*", "/v*/health", ()),
        Route("POST", "/models/*/deploy", ("models:deploy",)),
        Route("GET", "/", ("index:read",)),
        Route("GET", "/files/", ("files:read",)),
    )
)


@pytest.mark.parametrize(
    ("method", "path", "required"),
    [
        ("GET", "/models/a", ("models:read",)),  # the first matching rule wins
        ("GET", "/models/a/b", ("models:read", "models:list")),
        ("GET", "/models/a/", ("models:read", "models:list")),  # ** takes a trailing slash
        ("GET", "/models/", None),  # * and ** need at least one character / segment
        ("GET", "/models", None),
        ("DELETE", "/v1/health", ()),
        ("GET", "/v/health", None),  # * matches one or more characters
        ("GET", "/v1/x/health", None),  # * stays within a segment
        ("POST", "/models/a/deploy", ("models:deploy",)),
        ("POST", "/models/a/b/deploy", None),
        ("HEAD", "/models/a", None),  # HEAD is its own method
        ("GET", "/", ("index:read",)),
        ("GET", "/files/", ("files:read",)),  # a trailing slash is significant
        ("GET", "/files", None),
        ("GET", "/Models/a", None),  # case-sensitive
        ("GET", "/unknown", None),  # deny by default
        ("GET x", "/models/a", None),
    ],
)
def test_the_first_matching_rule_decides(
    method: str, path: str, required: tuple[str, ...] | None
) -> None:
    assert TABLE.required(method, path) == required


def test_an_empty_table_denies_everything() -> None:
    assert EMPTY.required("GET", "/") is None
    assert compiled(()) is EMPTY


def test_a_table_is_compiled_once_per_version() -> None:
    rules = (Route("GET", "/a", ()),)
    assert compiled(rules) is compiled((Route("GET", "/a", ()),))
    assert compiled(rules) is not compiled((Route("GET", "/b", ()),))


def test_literal_text_is_never_a_regular_expression() -> None:
    table = RouteTable((Route("GET", "/a.b/(x)+", ()),))
    assert table.required("GET", "/a.b/(x)+") == ()
    assert table.required("GET", "/aXb/xx") is None


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("/models/a?x=/admin", "/models/a"),
        ("/models/%41", "/models/A"),
        ("/caf%C3%A9", "/café"),
        ("/caf\xc3\xa9", "/café"),  # raw UTF-8, as a latin-1 header carries it
        ("/models/a/", "/models/a/"),
        ("/", "/"),
    ],
)
def test_a_plain_path_is_decoded_once(uri: str, path: str) -> None:
    assert normalised_path(uri) == path


@pytest.mark.parametrize(
    "uri",
    [
        "/a/../b",
        "/a/./b",
        "/a/%2e%2e/b",
        "/a/%2E/b",
        "/a/..",
        "/a//b",
        "//a",
        "/a%2Fb",
        "/a%5Cb",
        "/a\\b",
        "/a/%252e%252e/b",
        "/a%",
        "/a%zz",
        "/a%00",
        "/a\x01",
        "/%C3",
        "a/b",
        "",
        "http://host/a",
        "/" + "a" * 5000,
        "/a\u0100",
    ],
)
def test_a_path_servers_could_read_differently_is_refused(uri: str) -> None:
    assert normalised_path(uri) is None


@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=5))
def test_a_normalised_path_has_no_dot_or_empty_segments(segments: list[str]) -> None:
    path = normalised_path("/" + "/".join(quote(s, safe="") for s in segments))
    if path is not None:
        parts = path[1:].split("/")
        assert "." not in parts
        assert ".." not in parts
        assert "" not in parts[:-1]
        assert "\\" not in path
        assert "%" not in path


@given(st.text(alphabet="ab/*", min_size=1, max_size=10))
def test_star_never_crosses_a_slash(segment: str) -> None:
    table = RouteTable((Route("GET", "/x/*", ()),))
    required = table.required("GET", "/x/" + segment)
    assert (required is not None) == (segment != "" and "/" not in segment)


CATALOGUE = Catalogue(())


def _errors(value: object) -> dict[str, str]:
    with pytest.raises(InvalidInput) as raised:
        check_route_table("route_table", value, CATALOGUE)
    return {e.field: e.message for e in raised.value.errors}


def test_a_valid_table_keeps_its_order_with_methods_upper_cased() -> None:
    routes = check_route_table(
        "route_table",
        [
            {"method": "get", "path": "/b/**", "scopes": ["apps:read", "apps:read"]},
            {"method": "*", "path": "/a", "scopes": []},
        ],
        CATALOGUE,
    )
    assert routes == (Route("GET", "/b/**", ("apps:read",)), Route("*", "/a", ()))


def test_every_bad_entry_is_named() -> None:
    errors = _errors(
        [
            {"method": "FETCH", "path": "/a", "scopes": []},
            {"method": "GET", "path": "/a/**b", "scopes": ["apps:fly"]},
            "rule",
            {"method": "GET", "path": "/c", "scopes": [], "extra": 1},
        ]
    )
    assert set(errors) == {
        "route_table[0].method",
        "route_table[1].path",
        "route_table[1].scopes[0]",
        "route_table[2]",
        "route_table[3].extra",
    }


def test_a_duplicate_rule_and_an_oversized_table_are_refused() -> None:
    rule = {"method": "GET", "path": "/a", "scopes": []}
    assert "never applies" in _errors([rule, rule])["route_table[1].path"]
    assert set(_errors([rule] * (ROUTES_MAX + 1))) == {"route_table"}
    assert set(_errors("not a list")) == {"route_table"}
