"""Categories' `subcategories` make the tree; a file that would break it is refused per category."""

from __future__ import annotations

import pytest

from shop.models import Category
from tests.shop.helpers import import_shop, write_json

pytestmark = pytest.mark.django_db


def category(cid: int, *subcategories: int) -> dict:
    return {"id": cid, "name": f"C{cid}", "url": f"https://shop.example/c/{cid}", "subcategories": list(subcategories)}


def parents() -> dict[int, int | None]:
    return dict(Category.objects.values_list("id", "parent_id"))


def test_a_child_listed_before_its_parent_is_linked_too(tmp_path):
    run = import_shop(
        write_json(tmp_path / "c.json", [category(3), category(2, 3), category(1, 2)]), "--type", "categories"
    )
    assert run.code == 0
    assert parents() == {1: None, 2: 1, 3: 2}


def test_a_child_dropped_from_a_list_becomes_a_root(tmp_path):
    import_shop(write_json(tmp_path / "a.json", [category(1, 2, 3), category(2), category(3)]), "--type", "categories")
    import_shop(write_json(tmp_path / "b.json", [category(1, 2)]), "--type", "categories")
    assert parents() == {1: None, 2: 1, 3: None}


def test_a_subcategory_known_to_nobody_rejects_the_listing_category(tmp_path):
    run = import_shop(write_json(tmp_path / "c.json", [category(1, 2, 99), category(2)]), "--type", "categories")
    assert run.code == 1
    assert run.rejections == [
        "rejected categories at index 0 (id 1): subcategories[1]: 99 is not a known category "
        "(neither in this file nor in the shop)"
    ]
    assert parents() == {2: None}


def test_a_subcategory_already_in_the_shop_may_be_listed(tmp_path):
    import_shop(write_json(tmp_path / "a.json", [category(5)]), "--type", "categories")
    assert import_shop(write_json(tmp_path / "b.json", [category(1, 5)]), "--type", "categories").code == 0
    assert parents()[5] == 1


def test_a_category_listed_under_two_parents_rejects_the_second(tmp_path):
    run = import_shop(
        write_json(tmp_path / "c.json", [category(1, 3), category(2, 3), category(3)]), "--type", "categories"
    )
    assert run.rejections == [
        "rejected categories at index 1 (id 2): subcategories[0]: 3 is already a subcategory of 1"
    ]
    assert parents() == {1: None, 3: 1}


def test_a_cycle_rejects_the_categories_that_make_it(tmp_path):
    run = import_shop(
        write_json(tmp_path / "c.json", [category(1, 2), category(2, 3), category(3, 1), category(4)]),
        "--type",
        "categories",
    )
    assert run.code == 1
    assert len(run.rejections) == 3
    assert all("subcategories: would make the category tree a cycle" in line for line in run.rejections)
    assert parents() == {4: None}


def test_a_cycle_through_the_shops_own_tree_is_refused(tmp_path):
    import_shop(write_json(tmp_path / "a.json", [category(1, 2), category(2)]), "--type", "categories")
    # 2 lists 1 while 1 (not in this file) still lists 2.
    run = import_shop(write_json(tmp_path / "b.json", [category(2, 1)]), "--type", "categories")
    assert run.rejections == [
        "rejected categories at index 0 (id 2): subcategories: would make the category tree a cycle"
    ]
    assert parents() == {1: None, 2: 1}


def test_a_category_cannot_be_its_own_subcategory(tmp_path):
    run = import_shop(write_json(tmp_path / "c.json", [category(1, 1)]), "--type", "categories")
    assert "subcategories[0]: a category cannot be its own subcategory" in run.stderr
    assert not Category.objects.exists()
