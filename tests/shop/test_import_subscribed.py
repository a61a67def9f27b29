"""A customer's `subscribed` (the feed's own shape): accepted when it agrees with the ledger after
the row's own consents, refused otherwise, because a flag is no proof of consent."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdpr.ledger import ConsentChange, record_consents
from gdpr.models import ConsentRecord
from gdpr.policy import with_consent_state
from shop.importing import import_objects
from shop.models import Customer
from tests.shop.helpers import import_shop, write_json

pytestmark = pytest.mark.django_db

NO_PROOF = "a flag is no proof of consent: send a marketing consent record"
DAY = 86_400


def now_unix() -> int:
    return int(timezone.now().timestamp())


def customer(cid: int = 1, **fields) -> dict:
    return {"id": cid, "name": "Giulia Rossi", "email": f"giulia{cid}@example.com", **fields}


def marketing(granted: bool, at: int, source: str = "account") -> dict:
    return {"purpose": "marketing", "granted": granted, "at": at, "source": source, "evidence": "form"}


def marketing_state(cid: int = 1) -> bool | None:
    return with_consent_state(Customer.objects.filter(pk=cid)).values_list("marketing_consent", flat=True).get()


def customers_file(tmp_path, *objects: dict):
    return write_json(tmp_path / "c.json", list(objects))


def test_true_with_the_rows_own_grant_is_accepted(tmp_path):
    t = now_unix() - DAY
    run = import_shop(
        customers_file(tmp_path, customer(subscribed=True, consents=[marketing(True, t)])), "--type", "customers"
    )
    assert run.code == 0, run.stderr
    assert marketing_state() is True


def test_false_without_any_record_is_accepted(tmp_path):
    run = import_shop(customers_file(tmp_path, customer(subscribed=False)), "--type", "customers")
    assert run.code == 0, run.stderr
    assert marketing_state() is None


def test_the_flag_agrees_with_a_grant_already_in_the_ledger(tmp_path):
    t = now_unix() - DAY
    import_shop(customers_file(tmp_path, customer(consents=[marketing(True, t)])), "--type", "customers")
    run = import_shop(customers_file(tmp_path, customer(subscribed=True)), "--type", "customers")
    assert run.code == 0, run.stderr
    refused = import_shop(customers_file(tmp_path, customer(subscribed=False)), "--type", "customers")
    assert refused.rejections == [
        "rejected customers at index 0 (id 1): subscribed: is false, but the latest marketing consent record is "
        f"a grant (this row's consents included): {NO_PROOF} "
        '(consents: [{"purpose": "marketing", "granted": …}])'
    ]


def test_a_withdrawal_in_the_row_makes_false_agree_and_true_disagree(tmp_path):
    t = now_unix() - 2 * DAY
    import_shop(customers_file(tmp_path, customer(consents=[marketing(True, t)])), "--type", "customers")
    withdrawal = [marketing(False, t + DAY)]
    refused = import_shop(
        customers_file(tmp_path, customer(subscribed=True, consents=withdrawal)), "--type", "customers"
    )
    assert "subscribed: is true, but the latest marketing consent record is a withdrawal" in refused.stderr
    assert ConsentRecord.objects.count() == 1  # a rejected row writes nothing, its consents neither
    accepted = import_shop(
        customers_file(tmp_path, customer(subscribed=False, consents=withdrawal)), "--type", "customers"
    )
    assert accepted.code == 0, accepted.stderr
    assert marketing_state() is False


def test_an_older_record_in_the_row_does_not_outrank_the_ledgers_latest(tmp_path):
    t = now_unix() - 2 * DAY
    import_shop(customers_file(tmp_path, customer(consents=[marketing(False, t)])), "--type", "customers")
    older_grant = [marketing(True, t - DAY)]
    refused = import_shop(
        customers_file(tmp_path, customer(subscribed=True, consents=older_grant)), "--type", "customers"
    )
    assert NO_PROOF in refused.stderr


def test_on_a_tie_the_withdrawal_wins_as_in_the_policy(tmp_path):
    t = now_unix() - DAY
    tie = [marketing(True, t), marketing(False, t, source="import")]
    refused = import_shop(customers_file(tmp_path, customer(subscribed=True, consents=tie)), "--type", "customers")
    assert NO_PROOF in refused.stderr
    assert (
        import_shop(customers_file(tmp_path, customer(subscribed=False, consents=tie)), "--type", "customers").code == 0
    )
    assert marketing_state() is False


def test_a_grant_dated_ahead_of_our_clock_is_the_same_entry_on_the_next_import(tmp_path):
    # Stored at its recording time (gdpr.ledger.capped_at); a withdrawal recorded after it wins.
    ahead = now_unix() + 120
    path = customers_file(tmp_path, customer(subscribed=True, consents=[marketing(True, ahead)]))
    assert import_shop(path, "--type", "customers").code == 0
    record_consents([ConsentChange(1, "marketing", False, timezone.now(), "admin")])
    again = import_shop(path, "--type", "customers")
    assert "subscribed: is true, but the latest marketing consent record is a withdrawal" in again.stderr
    assert ConsentRecord.objects.count() == 2


def test_importing_the_same_file_twice_changes_nothing(tmp_path):
    t = now_unix() - DAY
    path = customers_file(
        tmp_path,
        customer(1, subscribed=True, consents=[marketing(True, t)]),
        customer(2, subscribed=False, consents=[marketing(True, t - DAY), marketing(False, t)]),
        customer(3, subscribed=False),
    )
    assert import_shop(path, "--type", "customers").code == 0
    records = ConsentRecord.objects.count()
    again = import_shop(path, "--type", "customers")
    assert again.code == 0, again.stderr
    assert "customers 0 created, 0 updated, 3 unchanged, 0 rejected" in again.stdout
    assert ConsentRecord.objects.count() == records


def test_only_the_disagreeing_row_of_a_batch_is_rejected(tmp_path):
    t = now_unix() - DAY
    path = customers_file(
        tmp_path,
        customer(1, subscribed=True, consents=[marketing(True, t)]),
        customer(2, subscribed=True),
        customer(3, subscribed=False, consents=[marketing(True, t)]),
    )
    run = import_shop(path, "--type", "customers")
    assert [line.split(":")[0] for line in run.rejections] == [
        "rejected customers at index 1 (id 2)",
        "rejected customers at index 2 (id 3)",
    ]
    assert list(Customer.objects.values_list("pk", flat=True)) == [1]
    assert list(ConsentRecord.objects.values_list("customer_id", flat=True)) == [1]


@pytest.mark.parametrize("value", ["true", 1, [True]])
def test_a_subscribed_that_is_not_a_boolean_is_a_type_error(tmp_path, value):
    run = import_shop(customers_file(tmp_path, customer(subscribed=value)), "--type", "customers")
    assert len(run.rejections) == 1
    assert "subscribed: must be true or false, not a" in run.rejections[0]
    assert "'true'" not in run.stderr  # a customer's texts are never repeated
    assert not Customer.objects.exists()


def test_without_a_ledger_the_flag_cannot_be_checked():
    problems: list[Any] = []

    class Reporter:
        def rejected(self, *args: Any) -> None:
            problems.append(args)

        def warning(self, message: str) -> None:
            problems.append(message)

    import_objects({"customers": [customer(subscribed=False)]}, reporter=Reporter())
    assert [str(p) for p in problems[0][3]] == ["subscribed: this import has no consent ledger to check it against"]


# --- the check and the policy agree -------------------------------------------------------------
BASE = 1_700_000_000
records = st.lists(st.tuples(st.booleans(), st.integers(0, 3)), max_size=3)  # (granted, day)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(held=records, given_=records, claimed=st.booleans())
def test_the_flag_is_accepted_exactly_when_the_policy_then_says_so(tmp_path, held, given_, claimed):
    cid = next(FRESH_IDS)  # the ledger is append-only: a new customer per example
    Customer.objects.create(id=cid, name="G", email="g@example.com")
    record_consents(
        [
            ConsentChange(cid, "marketing", granted, dt.datetime.fromtimestamp(BASE + day * DAY, dt.UTC), "account")
            for granted, day in held
        ]
    )
    consents = [marketing(granted, BASE + day * DAY, source="import") for granted, day in given_]
    run = import_shop(
        customers_file(tmp_path, customer(cid, subscribed=claimed, consents=consents)), "--type", "customers"
    )
    if run.code == 0:
        assert (marketing_state(cid) is True) == claimed
    else:
        assert NO_PROOF in run.stderr
        # Refused: had the consents been appended, the policy would have said otherwise.
        import_shop(customers_file(tmp_path, customer(cid, consents=consents)), "--type", "customers")
        assert (marketing_state(cid) is True) != claimed


FRESH_IDS = itertools.count(1000)
