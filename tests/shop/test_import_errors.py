"""Bad input: each case says clearly what is wrong, and nothing of it is half-written."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gdpr.models import ConsentRecord
from shop import validation
from shop.models import Customer, Order, OrderLine, Product
from tests.shop.helpers import T0, dumps, import_shop, write_json, write_ndjson

pytestmark = pytest.mark.django_db


def product(pid: int, **fields) -> dict:
    return {
        "id": pid,
        "name": f"Product {pid}",
        "description": "A product.",
        "price": Decimal("9.90"),
        "image": f"https://shop.example/img/{pid}.jpg",
        "url": f"https://shop.example/p/{pid}",
        "categories": [1],
        "created_at": T0,
        **fields,
    }


def customer(cid: int, **fields) -> dict:
    return {"id": cid, "name": f"Customer {cid}", "email": f"c{cid}@example.com", **fields}


def order(oid: int, **fields) -> dict:
    return {"id": oid, "products": [{"id": 1, "quantity": 1, "price": Decimal("9.90")}], "time": T0, **fields}


def test_truncated_json_is_refused_whole(tmp_path):
    text = dumps({"products": [product(1), product(2), product(3)]})
    path = tmp_path / "feed.json"
    path.write_text(text[: text.index('"Product 3"') + 5])
    run = import_shop(path)
    assert run.code == 2
    assert "the JSON ends too early (in products, at index 2): is the file truncated?" in run.stderr
    assert "nothing was imported" in run.stderr
    assert not Product.objects.exists()  # not even the two complete products before the cut


def test_truncated_json_array_is_refused_whole(tmp_path):
    path = tmp_path / "products.json"
    path.write_text(dumps([product(1), product(2)])[:-20])
    run = import_shop(path, "--type", "products")
    assert run.code == 2
    assert "is the file truncated?" in run.stderr
    assert not Product.objects.exists()


def test_a_truncated_last_ndjson_line_is_one_rejected_row(tmp_path):
    path = tmp_path / "products.ndjson"
    path.write_text(dumps(product(1)) + "\n" + dumps(product(2))[:30])
    run = import_shop(path, "--type", "products")
    assert run.code == 1
    assert len(run.rejections) == 1
    assert run.rejections[0].startswith("rejected products at line 2: is not valid JSON (")
    assert list(Product.objects.values_list("id", flat=True)) == [1]


def test_a_null_value_rejects_its_object_only(tmp_path):
    path = write_ndjson(
        tmp_path / "p.ndjson", [product(1), product(2, brand=None), product(3, color_names=["red", None])]
    )
    run = import_shop(path, "--type", "products")
    assert run.code == 1
    assert run.rejections == [
        "rejected products at line 2 (id 2): brand: null is not allowed (omit the key instead)",
        "rejected products at line 3 (id 3): color_names[1]: null is not allowed (omit the key instead)",
    ]
    assert list(Product.objects.values_list("id", flat=True)) == [1]


def test_a_string_where_a_number_belongs(tmp_path):
    path = write_json(tmp_path / "p.json", [product(1, price="12.50"), product(2, created_at="1700000000")])
    run = import_shop(path, "--type", "products")
    assert run.code == 1
    assert run.rejections == [
        "rejected products at index 0 (id 1): price: must be a number, not a string ('12.50')",
        "rejected products at index 1 (id 2): created_at: must be an integer unix time in seconds, not a string ('1700000000')",
    ]
    assert not Product.objects.exists()


def test_an_unknown_consent_purpose_rejects_the_customer_and_writes_no_consent(tmp_path):
    consents = [
        {"purpose": "third_party_sharing", "granted": True, "at": T0, "source": "account"},
        {"purpose": "newsletter", "granted": True, "at": T0, "source": "account"},
    ]
    path = write_json(tmp_path / "feed.json", {"customers": [customer(1, consents=consents), customer(2)]})
    run = import_shop(path)
    assert run.code == 1
    assert run.rejections == [
        "rejected customers at index 0 (id 1): consents[1].purpose: unknown consent purpose 'newsletter': "
        "use third_party_sharing or marketing"
    ]
    assert list(Customer.objects.values_list("id", flat=True)) == [2]
    assert not ConsentRecord.objects.exists()


def test_an_unknown_consent_source_and_a_future_consent_are_refused(tmp_path):
    consents = [
        {"purpose": "marketing", "granted": True, "at": T0, "source": "phone"},
        {"purpose": "marketing", "granted": True, "at": 4_000_000_000, "source": "account"},
    ]
    run = import_shop(write_json(tmp_path / "feed.json", {"customers": [customer(1, consents=consents)]}))
    assert "consents[0].source: unknown consent source 'phone'" in run.stderr
    assert "consents[1].at: lies in the future" in run.stderr
    assert not Customer.objects.exists()


@pytest.mark.parametrize("name", ["color-name", "läbel", "colour name", ""])
def test_an_attribute_name_outside_clerks_alphabet_is_refused(tmp_path, name):
    run = import_shop(write_json(tmp_path / "p.json", [product(1, **{name: "red"})]), "--type", "products")
    assert run.code == 1
    shown = name or '""'
    assert run.rejections == [
        f"rejected products at index 0 (id 1): {shown}: attribute names may contain only A-Z, a-z, 0-9 and _"
    ]
    assert not Product.objects.exists()


def test_duplicate_ids_in_one_file_keep_the_first_and_reject_the_rest(tmp_path):
    path = write_ndjson(tmp_path / "p.ndjson", [product(5, name="First"), product(6), product(5, name="Second")])
    run = import_shop(path, "--type", "products")
    assert run.code == 1
    assert run.rejections == [
        "rejected products at line 3 (id 5): id: 5 appears earlier in this file (the first one counts)"
    ]
    assert Product.objects.get(pk=5).name == "First"


def test_duplicate_ids_far_apart_and_out_of_order_are_found(tmp_path):
    ids = [3, 1, 2, 10, 7, 2, 11, 1]
    run = import_shop(write_ndjson(tmp_path / "p.ndjson", [product(i) for i in ids]), "--type", "products")
    assert [line.split(" (id ")[1].split(")")[0] for line in run.rejections] == ["2", "1"]
    assert sorted(Product.objects.values_list("id", flat=True)) == [1, 2, 3, 7, 10, 11]


def test_an_order_line_naming_an_unknown_product_is_kept(tmp_path):
    lines = [{"id": 424242, "quantity": 2, "price": Decimal("5.00")}]
    run = import_shop(write_json(tmp_path / "feed.json", {"orders": [order(1, products=lines, email="g@example.com")]}))
    assert run.code == 0, run.stderr
    assert list(OrderLine.objects.values_list("order_id", "product_id", "quantity")) == [(1, 424242, 2)]


def test_an_order_of_an_unknown_customer_is_rejected(tmp_path):
    feed = {"customers": [customer(1)], "orders": [order(1, customer=1), order(2, customer=99)]}
    run = import_shop(write_json(tmp_path / "feed.json", feed))
    assert run.code == 1
    assert run.rejections == [
        "rejected orders at index 1 (id 2): customer: no customer 99 in the shop: import the customer first "
        "(without the customer the GDPR policy cannot be applied to the order)"
    ]
    assert list(Order.objects.values_list("id", flat=True)) == [1]


def test_an_order_may_come_before_its_customer_in_the_single_feed(tmp_path):
    path = tmp_path / "feed.json"
    path.write_text('{"orders": [' + dumps(order(1, customer=1)) + '], "customers": [' + dumps(customer(1)) + "]}")
    assert import_shop(path).code == 0
    assert Order.objects.get(pk=1).customer_id == 1


@pytest.mark.parametrize("content", ["", "   \n\t\n"])
def test_an_empty_file_is_refused(tmp_path, content):
    path = tmp_path / "empty.json"
    path.write_text(content)
    run = import_shop(path)
    assert run.code == 2
    assert "CommandError: the file is empty; nothing was imported" in run.stderr


def test_an_empty_standard_input_is_refused():
    run = import_shop(b"", "--type", "products")
    assert run.code == 2
    assert "the file is empty" in run.stderr


def test_erased_customers_and_orders_are_never_brought_back(tmp_path):
    path = write_json(
        tmp_path / "feed.json", {"customers": [customer(1)], "orders": [order(1, customer=1, email="c1@example.com")]}
    )
    import_shop(path)
    from gdpr.erasure import erase_person

    erase_person(customer_id=1)
    run = import_shop(path)
    # Not a rejection: the shop keeps sending the row, and the import of the rest succeeds.
    assert run.code == 0
    assert (
        "warning: customers at index 0: customer 1 was erased (right to erasure): personal data not restored"
        in run.stderr
    )
    assert "warning: orders at index 0: order 1 was erased (right to erasure): personal data not restored" in run.stderr
    assert "customers 0 created, 0 updated, 0 unchanged, 0 rejected, 1 kept erased" in run.stdout
    assert "orders 0 created, 0 updated, 0 unchanged, 0 rejected, 1 kept erased" in run.stdout
    assert Customer.objects.get(pk=1).email == "" and Order.objects.get(pk=1).email == ""


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": "7"}, "id: must be an integer id, not a string ('7')"),
        ({"id": 2**63}, "id: is outside the 64-bit integer range of ids"),
        ({"price": -1}, "price: must not be negative"),
        ({"price": Decimal("1.23456")}, "price: has more than 4 decimal places"),
        ({"image": "/img/1.jpg"}, "image: must be a full http(s) URL, not a string ('/img/1.jpg')"),
        ({"categories": [1, 1]}, "categories[1]: lists 1 twice"),
        ({"index": "false"}, "index: must be true or false, not a string ('false')"),
        ({"created_at": 1.5}, "created_at: must be an integer unix time in seconds, not a decimal number (1.5)"),
        ({"name": {"klingon": "x"}}, "name.klingon: is not one of Clerk's language names"),
        ({"brand": {"italian": "x"}}, "brand: must be a string, not an object"),
        ({"nested": {"a": {"b": 1}}}, "nested.a: is not one of Clerk's language names"),
    ],
)
def test_each_field_rule_names_the_field_and_the_reason(tmp_path, fields, message):
    obj = product(1, **fields)
    run = import_shop(write_json(tmp_path / "p.json", [obj]), "--type", "products")
    assert run.code == 1
    assert message in run.stderr
    assert not Product.objects.exists()


def test_a_missing_required_field_and_an_unknown_order_field(tmp_path):
    bad_order = order(1, coupon="X")
    del bad_order["time"]
    run = import_shop(write_json(tmp_path / "o.json", [bad_order]), "--type", "orders")
    assert "time: missing (required)" in run.stderr
    assert "coupon: unknown field: orders carry only" in run.stderr
    assert "products[0].quantity" not in run.stderr


def test_a_customers_subscribed_flag_without_a_marketing_consent_is_no_proof(tmp_path):
    run = import_shop(write_json(tmp_path / "c.json", [customer(1, subscribed=True)]), "--type", "customers")
    assert run.rejections == [
        "rejected customers at index 0 (id 1): subscribed: is true, but there is no marketing consent record "
        "(this row's consents included): a flag is no proof of consent: send a marketing consent record "
        '(consents: [{"purpose": "marketing", "granted": …}])'
    ]
    assert not Customer.objects.exists()


def test_a_batch_the_database_refuses_is_not_half_written(tmp_path, monkeypatch):
    # Let a negative quantity past validation, so the database's CHECK constraint refuses it.
    monkeypatch.setattr(validation._Reader, "_quantity", lambda self, path, value: value)
    bad = [{"id": 1, "quantity": -1, "price": Decimal("1.00")}]
    orders = [order(1, email="a@example.com"), order(2, products=bad), order(3, email="c@example.com")]
    run = import_shop(write_json(tmp_path / "o.json", orders), "--type", "orders", "--batch-size", "2")
    assert run.code == 1
    assert (
        "warning: orders: the batch from index 0 to index 1 was not written: the database refused the batch"
        in run.stderr
    )
    assert len(run.rejections) == 2
    assert "orders 1 created, 0 updated, 0 unchanged, 2 rejected" in run.stdout
    assert list(Order.objects.values_list("id", flat=True)) == [3]
    assert list(OrderLine.objects.values_list("order_id", flat=True)) == [3]


def test_an_ndjson_line_that_is_not_json_names_its_line(tmp_path):
    path = tmp_path / "p.ndjson"
    path.write_text(dumps(product(1)) + "\n\n{oops}\n" + dumps(product(2)) + "\n")
    run = import_shop(path, "--type", "products")
    assert run.rejections == [
        "rejected products at line 3: is not valid JSON (Expecting property name enclosed in double quotes at column 2)"
    ]
    assert sorted(Product.objects.values_list("id", flat=True)) == [1, 2]


def test_a_value_that_is_not_an_object_is_rejected(tmp_path):
    run = import_shop(write_json(tmp_path / "p.json", [product(1), 42, "x"]), "--type", "products")
    assert run.rejections == [
        "rejected products at index 1: must be a JSON object, not an integer (42)",
        "rejected products at index 2: must be a JSON object, not a string ('x')",
    ]


@pytest.mark.parametrize(
    "url", ["https://shop.example/a b", "https://shop.example/\u0000", "ftp://shop.example/p", "https://"]
)
def test_a_url_must_be_a_full_http_url_without_spaces_or_control_characters(tmp_path, url):
    run = import_shop(write_json(tmp_path / "p.json", [product(1, url=url)]), "--type", "products")
    assert "url: must be a full http(s) URL" in run.stderr
    assert not Product.objects.exists()


def test_messages_about_customers_never_repeat_their_texts(tmp_path):
    bad = customer(1, birth_date="01/02/1990", zip=40121, email="not-an-address")
    run = import_shop(write_json(tmp_path / "c.json", [bad]), "--type", "customers")
    assert 'birth_date: must be a date "YYYY-MM-DD", not a string\n' in run.stderr
    assert "email: is not an email address" in run.stderr
    assert "zip: must be a string, not an integer (40121)" in run.stderr
    assert "1990" not in run.stderr and "not-an-address" not in run.stderr
