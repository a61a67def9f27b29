"""The policy on named examples: each DESIGN.md sentence, and why a customer is in or out."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from gdpr.models import Purpose
from gdpr.policy import PolicyContext, eligibility_reason, eligible_customers, eligible_orders
from tests.factories import ConsentRecordFactory, CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


def days_ago(n):
    return timezone.now() - dt.timedelta(days=n)


def test_contract_customer_is_eligible_and_withdrawal_is_an_objection():
    c = CustomerFactory()
    assert list(eligible_customers()) == [c]
    ConsentRecordFactory(customer=c, granted=False)
    assert list(eligible_customers()) == []
    assert eligibility_reason(c).code == "objection"


def test_guest_order_by_terms_only_under_personalisation():
    o = OrderFactory(customer=None, terms_accepted_at=timezone.now())
    assert list(eligible_orders()) == [o]
    assert list(eligible_orders(purpose="marketing")) == []


def test_guest_order_without_terms_is_excluded():
    OrderFactory(customer=None, terms_accepted_at=None)
    assert list(eligible_orders()) == []


def test_old_customer_with_recent_order_is_eligible():
    c = CustomerFactory(registered_at=days_ago(2000))
    assert list(eligible_customers()) == []
    assert eligibility_reason(c).code == "contract_stale"
    OrderFactory(customer=c)
    assert list(eligible_customers()) == [c]
    ConsentRecordFactory(customer=c, purpose=Purpose.MARKETING)
    assert eligible_customers().get().marketing_consent is True


def test_explicit_consent_holds_whatever_the_age_but_old_orders_stay_out():
    c = CustomerFactory(registered_at=days_ago(3000), terms_accepted_at=None)
    old = OrderFactory(customer=c, placed_at=days_ago(1000))
    ConsentRecordFactory(customer=c, at=days_ago(2500))
    assert list(eligible_customers()) == [c]
    assert list(eligible_orders()) == []
    new = OrderFactory(customer=c, placed_at=days_ago(3))
    assert list(eligible_orders()) == [new]
    assert old not in eligible_orders()


def test_marketing_purpose_needs_explicit_consent():
    c = CustomerFactory()
    OrderFactory(customer=c)
    assert list(eligible_customers(purpose="marketing")) == []
    assert eligibility_reason(c, purpose="marketing").code == "no_explicit_consent"
    ConsentRecordFactory(customer=c)
    assert list(eligible_customers(purpose="marketing")) == [c]
    assert eligible_orders(purpose="marketing").count() == 1


def test_marketing_consent_alone_is_no_ground_for_sharing():
    c = CustomerFactory(terms_accepted_at=None)
    ConsentRecordFactory(customer=c, purpose=Purpose.MARKETING)
    assert list(eligible_customers()) == []
    assert eligibility_reason(c).code == "no_contract"


def test_regrant_after_withdrawal_restores_and_latest_by_time_wins():
    c = CustomerFactory()
    ConsentRecordFactory(customer=c, granted=False, at=days_ago(2))
    ConsentRecordFactory(customer=c, granted=True, at=days_ago(1))
    assert list(eligible_customers()) == [c]
    # A record entered later but dated earlier does not change the state.
    ConsentRecordFactory(customer=c, granted=False, at=days_ago(5))
    assert list(eligible_customers()) == [c]


def test_withdrawal_wins_a_tie_in_time():
    c = CustomerFactory()
    at = days_ago(1)
    ConsentRecordFactory(customer=c, granted=False, at=at)
    ConsentRecordFactory(customer=c, granted=True, at=at)
    assert list(eligible_customers()) == []


def test_erased_customer_is_never_eligible_nor_their_orders():
    c = CustomerFactory(erased_at=timezone.now())
    ConsentRecordFactory(customer=c)
    OrderFactory(customer=c)
    assert list(eligible_customers()) == []
    assert list(eligible_orders()) == []
    assert eligibility_reason(c).code == "erased"


def test_window_edge_is_inclusive():
    now = timezone.now()
    ctx = PolicyContext.current(now=now)
    c = CustomerFactory(registered_at=ctx.window_start)
    assert list(eligible_customers(now=now)) == [c]
    assert list(eligible_customers(now=now + dt.timedelta(seconds=1))) == []


def test_unknown_purpose_fails_closed():
    with pytest.raises(ValueError):
        list(eligible_customers(purpose="analytics"))


def test_reason_is_translated(settings):
    from django.utils import translation

    c = CustomerFactory()
    with translation.override("it"):
        assert eligibility_reason(c).reason == "contratto, dati recenti"
