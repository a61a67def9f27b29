"""What a reply from Clerk means: a success, a refusal, or Clerk broken (`judge_reply`).

Only a JSON object with a string `status` is Clerk's answer; anything else on a 2xx means Clerk
(or something in front of it) is broken, which is transient, never a refusal.
"""

from __future__ import annotations

import pytest

from clerk.client import ClerkRefused, ClerkUnreachable, get_client, judge_reply
from tests.security.conftest import VERIFY

UNUSABLE_BODIES = {
    "not JSON": b"<html>Service temporarily unavailable</html>",
    "truncated": b'{"status": "ok"',
    "empty": b"",
    "array": b'[{"status": "ok"}]',
    "string": b'"ok"',
    "number": b"200",
    "null": b"null",
    "no status": b'{"token_payload": {"sub": "x"}}',
    "status not a string": b'{"status": true}',
    "too large": None,
}


def judge(status: int, content: bytes | None, **kwargs):
    return judge_reply(status=status, content=content, what="POST /token/verify", **kwargs)


@pytest.mark.parametrize("status", [200, 201, 204])
def test_an_explicit_ok_on_a_2xx_is_a_success(status):
    assert judge(status, b'{"status": "ok", "token_payload": {}}')["status"] == "ok"


@pytest.mark.parametrize("status", [200, 204, 299])
@pytest.mark.parametrize("content", UNUSABLE_BODIES.values(), ids=UNUSABLE_BODIES.keys())
def test_a_2xx_that_is_not_an_object_with_a_status_means_clerk_is_broken(status, content):
    with pytest.raises(ClerkUnreachable, match="not a JSON object with a status") as caught:
        judge(status, content)
    assert caught.value.status == status


def test_an_error_object_is_a_refusal_with_clerks_reason():
    with pytest.raises(ClerkRefused) as caught:
        judge(200, b'{"status": "error", "type": "invalid_token", "message": "Token is not valid."}')
    assert (caught.value.status, caught.value.error_type) == (200, "invalid_token")
    assert caught.value.reason == "Token is not valid."
    assert "invalid_token" in str(caught.value) and "Token is not valid." in str(caught.value)


def test_clerks_reason_is_cut_short():
    with pytest.raises(ClerkRefused) as caught:
        judge(400, b'{"status": "error", "type": "bad", "message": "' + b"x" * 5000 + b'"}')
    assert len(caught.value.reason) == 200


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@pytest.mark.parametrize(
    "content",
    [b'{"status": "error", "type": "http_error"}', b'{"status": "ok"}', b"<html>Not found</html>", None],
    ids=["error object", "ok object", "html", "too large"],
)
def test_a_4xx_is_a_refusal_whatever_its_body(status, content):
    with pytest.raises(ClerkRefused) as caught:
        judge(status, content)
    assert caught.value.status == status


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_a_transient_status_is_unreachable_with_its_retry_after(status):
    with pytest.raises(ClerkUnreachable) as caught:
        judge(status, None, retry_after=12.0)
    assert (caught.value.status, caught.value.retry_after) == (status, 12.0)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_an_answer(status):
    with pytest.raises(ClerkUnreachable):
        judge(status, b'{"status": "ok"}')


@pytest.mark.django_db
def test_a_redirect_is_not_followed(fake_clerk):
    """Following it would send the token (or, for the outbox, the private key) elsewhere."""
    fake_clerk.behave(VERIFY, "redirect:/privacy/forget")
    with pytest.raises(ClerkUnreachable, match="HTTP 307"):
        get_client().verify_token("any-token")
    assert [c.path for c in fake_clerk.calls()] == [VERIFY]


@pytest.mark.django_db
@pytest.mark.parametrize("outcome", ["malformed", "truncated", "empty", "not-object", "no-status"])
def test_the_client_raises_unreachable_for_an_unusable_200_over_http(fake_clerk, outcome):
    fake_clerk.behave("/customers", outcome)
    with pytest.raises(ClerkUnreachable):
        get_client().delete("customers", [1])


@pytest.mark.django_db
def test_the_client_raises_refused_for_a_4xx_html_page_over_http(fake_clerk):
    fake_clerk.behave("/customers", "html:404")
    with pytest.raises(ClerkRefused) as caught:
        get_client().delete("customers", [1])
    assert caught.value.status == 404


@pytest.mark.django_db
def test_the_fake_refuses_every_call_naming_a_refused_id(fake_clerk):
    fake_clerk.state.refuse_ids = {7}
    client = get_client()
    with pytest.raises(ClerkRefused, match="Object 7 is invalid"):
        client.delete("products", [1, 7, 9])
    with pytest.raises(ClerkRefused, match="Object 7 is invalid"):
        client.upsert("products", [{"id": 7, "name": "x"}])
    assert client.delete("products", [1, 9])["status"] == "ok"
    assert client.upsert("products", [{"id": 8, "name": "x"}])["status"] == "ok"
