"""factory_boy factories for the shop and the ledger."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from gdpr.models import ConsentRecord, Purpose, Source
from shop.models import Category, Customer, Order, OrderLine, Page, Product, ProductCategory


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    id = factory.Sequence(lambda n: 1000 + n)
    name = factory.Sequence(lambda n: f"Category {n}")
    url = factory.LazyAttribute(lambda o: f"https://shop.example/c/{o.id}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        skip_postgeneration_save = True

    id = factory.Sequence(lambda n: 1 + n)
    name = factory.Sequence(lambda n: f"Product {n}")
    description = factory.LazyAttribute(lambda o: f"Description of {o.name}")
    price = Decimal("19.99")
    image = factory.LazyAttribute(lambda o: f"https://shop.example/img/{o.id}.jpg")
    url = factory.LazyAttribute(lambda o: f"https://shop.example/p/{o.id}")
    created_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=30))

    @factory.post_generation
    def categories(self, create, extracted, **kwargs):
        if create and extracted:
            ProductCategory.objects.bulk_create(ProductCategory(product=self, category=c) for c in extracted)


class PageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Page

    id = factory.Sequence(lambda n: 1 + n)
    type = "cms"
    title = factory.Sequence(lambda n: f"Page {n}")
    text = "Some text."
    url = factory.LazyAttribute(lambda o: f"https://shop.example/pages/{o.id}")


class CustomerFactory(factory.django.DjangoModelFactory):
    """A registered customer with accepted terms, registered recently: eligible by contract."""

    class Meta:
        model = Customer

    id = factory.Sequence(lambda n: 1 + n)
    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    registered_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=10))
    terms_accepted_at = factory.LazyAttribute(lambda o: o.registered_at)


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order
        skip_postgeneration_save = True

    id = factory.Sequence(lambda n: 1 + n)
    customer = factory.SubFactory(CustomerFactory)
    email = factory.LazyAttribute(lambda o: o.customer.email if o.customer else "guest@example.com")
    placed_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=5))

    @factory.post_generation
    def lines(self, create, extracted, **kwargs):
        if not create:
            return
        specs = extracted if extracted is not None else [(1, 1, Decimal("10.00"))]
        OrderLine.objects.bulk_create(
            OrderLine(order=self, product_id=pid, quantity=q, unit_price=price) for pid, q, price in specs
        )


class ConsentRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConsentRecord

    customer = factory.SubFactory(CustomerFactory)
    purpose = Purpose.THIRD_PARTY_SHARING
    granted = True
    at = factory.LazyFunction(timezone.now)
    source = Source.ACCOUNT
    evidence = "Ticked the sharing box on the account page."
