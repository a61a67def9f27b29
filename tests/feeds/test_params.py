"""Feed parameters: what is accepted, and a 400 with a stable code and a sentence for the rest."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from feeds.errors import BadParameter
from feeds.params import FeedParams, parse_params


def parse(query: str) -> FeedParams:
    return parse_params(QueryDict(query))


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.CLERK_FEED_MAX_LIMIT = 1000
    settings.CLERK_FEED_DEFAULT_LIMIT = 500
    settings.CLERK_LANGUAGES = ["italian", "english"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", FeedParams()),
        ("limit=100&offset=200", FeedParams(limit=100, offset=200)),
        ("limit=1000", FeedParams(limit=1000)),
        ("limit=1", FeedParams(limit=1)),
        ("offset=0&limit=5", FeedParams(limit=5, offset=0)),
        ("limit=007", FeedParams(limit=7)),
        ("offset=30", FeedParams(limit=500, offset=30)),  # offset alone: a default-sized page
        ("modified_after=0", FeedParams(modified_after=0)),
        ("modified_after=7", FeedParams(modified_after=7)),
        ("modified_after=99999999999999999999999", FeedParams(modified_after=10**19)),
        ("language=italian", FeedParams(language="italian")),
        ("limit=&offset=&modified_after=", FeedParams()),  # an unfilled URL template
        ("salt=abc&hash=def&_=123&limit=5", FeedParams(limit=5)),  # others' parameters are ignored
    ],
)
def test_valid_queries_parse(query, expected):
    assert parse(query) == expected


@pytest.mark.parametrize(
    "query, code, detail",
    [
        ("limit=abc", "limit_not_integer", "limit must be a whole number written in digits (got 'abc')."),
        ("limit=1.5", "limit_not_integer", "limit must be a whole number written in digits (got '1.5')."),
        ("limit=1e3", "limit_not_integer", "limit must be a whole number written in digits (got '1e3')."),
        ("limit=%2B5", "limit_not_integer", "limit must be a whole number written in digits (got '+5')."),
        ("limit=%205", "limit_not_integer", "limit must be a whole number written in digits (got ' 5')."),
        ("limit=0", "limit_too_small", "limit must be at least 1 (got 0)."),
        ("limit=-3", "limit_too_small", "limit must be at least 1 (got -3)."),
        ("limit=1001", "limit_too_large", "limit must be at most 1000 (got 1001); page with a smaller limit."),
        (
            "limit=" + "9" * 50,
            "limit_too_large",
            "limit must be at most 1000 (got " + "9" * 50 + "); page with a smaller limit.",
        ),
        ("offset=x&limit=5", "offset_not_integer", "offset must be a whole number written in digits (got 'x')."),
        ("offset=-1&limit=5", "offset_negative", "offset must be 0 or more (got -1)."),
        ("offset=" + "9" * 30 + "&limit=5", "offset_too_large", "offset must be at most 4611686018427387904."),
        (
            "modified_after=yesterday",
            "modified_after_not_integer",
            "modified_after must be a whole number written in digits (got 'yesterday').",
        ),
        ("modified_after=-2", "modified_after_negative", "modified_after is a number of days, 0 or more (got -2)."),
        ("language=klingon", "unknown_language", "language must be one of italian, english (got 'klingon')."),
        ("language=Italian", "unknown_language", "language must be one of italian, english (got 'Italian')."),
        ("limit=5&limit=10", "repeated_parameter", "limit was given 2 times; give it once."),
        ("offset=0&offset=5&limit=5", "repeated_parameter", "offset was given 2 times; give it once."),
        ("language=italian&language=english", "repeated_parameter", "language was given 2 times; give it once."),
    ],
)
def test_bad_parameter_is_a_400_with_a_code_and_a_sentence(feed_client, db, query, code, detail):
    with pytest.raises(BadParameter) as raised:
        parse(query)
    assert (raised.value.code, raised.value.detail, raised.value.status) == (code, detail, 400)

    response = feed_client.get(f"/feed/products.json?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": code, "detail": detail}


def test_language_is_refused_when_the_feeds_are_single_language(feed_client, db, settings):
    settings.CLERK_LANGUAGES = []
    response = feed_client.get("/feed/pages.json?language=english")
    assert response.status_code == 400
    assert response.json() == {
        "error": "unknown_language",
        "detail": "This shop's feeds are single-language (CLERK_LANGUAGES is empty): drop language.",
    }


def test_limit_above_cap_is_400_never_clamped(feed_client, db, settings):
    settings.CLERK_FEED_MAX_LIMIT = 10
    assert feed_client.get("/feed/products.json?limit=10").status_code == 200
    response = feed_client.get("/feed/products.json?limit=11")
    assert response.status_code == 400
    assert response.json()["error"] == "limit_too_large"


def test_single_feed_is_not_paged(feed_client, db):
    response = feed_client.get("/feed/all.json?limit=10&offset=0")
    assert response.status_code == 400
    assert response.json() == {
        "error": "single_feed_not_paged",
        "detail": "The single feed is not paged: drop limit and offset, or use the per-type feeds.",
    }


def test_every_bad_parameter_of_the_single_feed_is_a_400_too(feed_client, db):
    for query, code in [("modified_after=-1", "modified_after_negative"), ("language=x", "unknown_language")]:
        response = feed_client.get(f"/feed/all.json?{query}")
        assert (response.status_code, response.json()["error"]) == (400, code)


def test_feed_params_refuse_impossible_values_when_built_directly():
    for bad in ({"limit": 0}, {"offset": -1}, {"modified_after": -1}):
        with pytest.raises(ValueError):
            FeedParams(**bad)


def test_walk_is_the_query_without_its_offset():
    assert FeedParams(limit=5, offset=10, language="italian").walk() == FeedParams(limit=5, language="italian").walk()
    assert FeedParams(limit=5).walk() != FeedParams(limit=6).walk()
