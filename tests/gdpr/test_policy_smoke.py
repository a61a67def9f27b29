import datetime as dt

import pytest
from django.utils import timezone

from gdpr.models import Purpose
from gdpr.policy import eligible_customers, eligible_orders, eligibility_reason
from tests.factories import ConsentRecordFactory, CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


def test_contract_customer_is_eligible_and_withdrawal_excludes():
    c = CustomerFactory()
    assert list(eligible_customers()) == [c]
    ConsentRecordFactory(customer=c, granted=False)
    assert list(eligible_customers()) == []
    assert "objection" in eligibility_reason(c).reason


def test_guest_order_by_terms_only_under_personalisation():
    o = OrderFactory(customer=None, terms_accepted_at=timezone.now())
    assert list(eligible_orders()) == [o]
    assert list(eligible_orders(purpose="marketing")) == []


def test_old_customer_with_recent_order_is_eligible():
    c = CustomerFactory(registered_at=timezone.now() - dt.timedelta(days=2000))
    assert list(eligible_customers()) == []
    OrderFactory(customer=c)
    assert list(eligible_customers()) == [c]
    ConsentRecordFactory(customer=c, purpose=Purpose.MARKETING)
    assert eligible_customers().get().marketing_consent is True
