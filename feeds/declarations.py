"""The five Clerk feeds, one declaration each (see `feeds.base` for the contract).

Customers and orders come only from the GDPR policy (`gdpr.policy`): nobody filters them again
here. Required attributes are always present (an empty required text is ""); optional ones are
omitted when empty, never null (Clerk: "if an attribute does not exist, omit it").
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from feeds.base import TRANSLATIONS, Feed, UnixTime, age_on, attach_lists, decode_json, json_text
from gdpr.policy import eligible_customers, eligible_orders
from shop.clerk_objects import KINDS, feed_fields, standard_attributes
from shop.models import Category, Customer, Order, OrderLine, Page, Product, ProductCategory


def as_stored(type_name: str, model: type[Model]) -> tuple[str, ...]:
    """The standard attributes of `type_name` that `model` keeps in a column of the same name and
    a feed reads as they are (times excepted: the database converts them, see `UnixTime`)."""
    columns = {f.name for f in model._meta.concrete_fields}
    standard = standard_attributes(type_name)
    return tuple(
        name
        for name, f in feed_fields(type_name).items()
        if name in standard and name in columns and KINDS[f.kind] != "time"
    )


class ProductFeed(Feed):
    name = "products"
    model = Product
    rows_leave_only_by_deletion = True  # catalogue: no time window, no consent
    columns = (*as_stored("products", Product), "created_unix", "attributes_json", TRANSLATIONS)

    def rows(self):
        # The unix time straight from the database (see `UnixTime`): the largest feed's
        # costliest per-row conversion. The extra attributes as text, decoded in `to_object`
        # (see `json_text`): no per-row converter is left on a plain page's query.
        return Product.objects.annotate(created_unix=UnixTime("created_at"), attributes_json=json_text("attributes"))

    def attach_related(self, rows: list[dict[str, Any]]) -> None:
        # One query per batch for every membership (never one per product).
        attach_lists(rows, ProductCategory.objects.all(), key="product_id", values=("category_id",), into="categories")

    def to_object(self, row: dict[str, Any]) -> dict[str, Any]:
        texts = self.texts
        if texts.plain:
            # What `texts.text` gives without languages, without four calls per row: the
            # largest feed's texts, read directly.
            name, description, image, url = (
                row["name"] or "",
                row["description"] or "",
                row["image"] or "",
                row["url"] or "",
            )
        else:
            name, description, image, url = (texts.text(row, f) for f in ("name", "description", "image", "url"))
        obj: dict[str, Any] = {
            "id": row["id"],
            "name": name,
            # Required by Clerk: an empty description is "", never left out.
            "description": description,
            "price": row["price"],  # a Decimal, written exactly (`feeds.encoding`)
            "image": image,
            "url": url,
            "categories": row["categories"],
            "created_at": row["created_unix"],
        }
        if row["list_price"] is not None:
            obj["list_price"] = row["list_price"]
        if row["brand"]:
            obj["brand"] = row["brand"]
        if row["index"] is False:
            # Kept for its sales history, never shown; Clerk's default is index: true.
            obj["index"] = False
        return self.merge_extras(obj, decode_json(row["attributes_json"]))


class CategoryFeed(Feed):
    name = "categories"
    model = Category
    rows_leave_only_by_deletion = True  # catalogue: no time window, no consent
    columns = (*as_stored("categories", Category), TRANSLATIONS)

    def attach_related(self, rows: list[dict[str, Any]]) -> None:
        # Clerk builds its tree from each category's subcategories: the children, one query.
        attach_lists(rows, Category.objects.all(), key="parent_id", values=("id",), into="subcategories")

    def to_object(self, row: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": row["id"],
            "name": self.texts.text(row, "name"),
            "url": self.texts.text(row, "url"),
            "subcategories": row["subcategories"],
        }
        for field in ("image", "description"):
            value = self.texts.optional_text(row, field)
            if value is not None:
                obj[field] = value
        return obj


class OrderFeed(Feed):
    name = "orders"
    model = Order
    rows_leave_only_by_deletion = False  # they also leave the GDPR window, by withdrawal, by erasure
    personal = True  # what is served is recorded as held by Clerk (`gdpr.holdings`)
    columns = ("id", "customer_id", "email", "placed_unix")

    def rows(self):
        # GDPR: only orders the policy admits, nothing filtered again here. The unix time from
        # the database, as for products (`UnixTime`).
        return eligible_orders(now=self.now).annotate(placed_unix=UnixTime("placed_at"))

    def attach_related(self, rows: list[dict[str, Any]]) -> None:
        # One query per batch for every line; a line is the product, quantity and unit price.
        attach_lists(
            rows,
            OrderLine.objects.all(),
            key="order_id",
            values=("id", "product_id", "quantity", "unit_price"),
            into="products",
            item=lambda _line_id, product_id, quantity, unit_price: {
                "id": product_id,
                "quantity": quantity,
                "price": unit_price,
            },
        )

    def to_object(self, row: dict[str, Any]) -> dict[str, Any]:
        # Clerk accepts no other attribute on an order.
        obj: dict[str, Any] = {
            "id": row["id"],
            "products": row["products"],
            "time": row["placed_unix"],
        }
        if row["customer_id"] is not None:
            obj["customer"] = row["customer_id"]  # a guest order has none
        if row["email"]:
            obj["email"] = row["email"]
        return obj


class CustomerFeed(Feed):
    name = "customers"
    model = Customer
    rows_leave_only_by_deletion = False  # they also leave the GDPR window, by withdrawal, by erasure
    personal = True  # what is served is recorded as held by Clerk (`gdpr.holdings`)
    columns = ("id", "name", "email", "zip", "gender", "birth_date", "age", "is_b2b", "marketing_consent")

    def rows(self):
        # GDPR: only customers with a legal basis, annotated with their consent state.
        return eligible_customers(now=self.now)

    def to_object(self, row: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": row["id"],
            "name": row["name"] or "",
            "email": row["email"] or "",
            # Clerk may send marketing email only when this is true: an active grant, nothing less.
            "subscribed": row["marketing_consent"] is True,
        }
        if row["zip"]:
            obj["zip"] = row["zip"]
        if row["gender"]:
            obj["gender"] = row["gender"]
        age = age_on(row["birth_date"], self.now.date()) if row["birth_date"] else row["age"]
        if age is not None:
            obj["age"] = age
        if row["is_b2b"] is not None:
            obj["is_b2b"] = row["is_b2b"]
        return obj


class PageFeed(Feed):
    name = "pages"
    model = Page
    rows_leave_only_by_deletion = True  # catalogue: no time window, no consent
    columns = (*as_stored("pages", Page), "attributes_json", TRANSLATIONS)

    def rows(self):
        # The extra attributes as text, decoded in `to_object` (see `json_text`).
        return super().rows().annotate(attributes_json=json_text("attributes"))

    def to_object(self, row: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": row["id"],
            "type": row["type"],
            "url": self.texts.text(row, "url"),
            "title": self.texts.text(row, "title"),
            "text": self.texts.text(row, "text"),
        }
        image = self.texts.optional_text(row, "image")
        if image is not None:
            obj["image"] = image
        return self.merge_extras(obj, decode_json(row["attributes_json"]))


DECLARATIONS: tuple[type[Feed], ...] = (ProductFeed, CategoryFeed, OrderFeed, CustomerFeed, PageFeed)
