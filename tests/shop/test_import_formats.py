"""The three shapes of an import file, standard input, and what the command prints."""

from __future__ import annotations

import pytest

from shop.models import Category, Page, Product
from tests.shop.helpers import dumps, import_shop, write_json, write_ndjson
from tests.shop.test_import_errors import product

pytestmark = pytest.mark.django_db


def page(pid: int) -> dict:
    return {"id": pid, "type": "cms", "url": f"https://shop.example/{pid}", "title": f"Page {pid}", "text": "Text."}


def test_ndjson_of_one_type(tmp_path):
    run = import_shop(write_ndjson(tmp_path / "p.ndjson", [product(1), product(2)]), "--type", "products")
    assert run.code == 0
    assert run.stdout == "import_shop: products 2 created, 0 updated, 0 unchanged, 0 rejected\n"
    assert run.stderr == ""


def test_json_array_of_one_type(tmp_path):
    run = import_shop(write_json(tmp_path / "pages.json", [page(1), page(2)]), "--type", "pages")
    assert run.code == 0
    assert sorted(Page.objects.values_list("id", flat=True)) == [1, 2]


def test_standard_input_as_ndjson_and_as_a_single_feed():
    assert import_shop((dumps(product(1)) + "\n").encode(), "--type", "products").code == 0
    assert import_shop(dumps({"pages": [page(3)]}).encode()).code == 0
    assert Product.objects.filter(pk=1).exists() and Page.objects.filter(pk=3).exists()


def test_a_byte_order_mark_is_tolerated(tmp_path):
    path = tmp_path / "feed.json"
    path.write_bytes(b"\xef\xbb\xbf" + dumps({"pages": [page(1)]}).encode())
    assert import_shop(path).code == 0
    ndjson = tmp_path / "p.ndjson"
    ndjson.write_bytes(b"\xef\xbb\xbf" + dumps(page(2)).encode() + b"\n")
    assert import_shop(ndjson, "--type", "pages").code == 0
    assert Page.objects.count() == 2


def test_a_json_array_without_type_says_to_add_it(tmp_path):
    run = import_shop(write_json(tmp_path / "p.json", [product(1)]))
    assert run.code == 2
    assert "the file is a JSON array: say which objects it holds with --type" in run.stderr


def test_an_unknown_section_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "feed.json"
    path.write_text('{"pages": [' + dumps(page(1)) + '], "produtcs": []}')
    run = import_shop(path)
    assert run.code == 2
    assert 'unknown section "produtcs"' in run.stderr
    assert not Page.objects.exists()


def test_a_section_that_is_not_an_array_is_refused(tmp_path):
    run = import_shop(write_json(tmp_path / "feed.json", {"products": {"id": 1}}))
    assert run.code == 2
    assert 'the "products" section must be an array of objects' in run.stderr


def test_a_missing_file_is_refused(tmp_path):
    run = import_shop(tmp_path / "nope.json")
    assert run.code == 2
    assert "cannot open" in run.stderr


def test_an_ndjson_file_without_type_is_refused_with_a_hint(tmp_path):
    run = import_shop(write_ndjson(tmp_path / "p.ndjson", [page(1), page(2)]))
    assert run.code == 2
    assert 'unknown section "id"' in run.stderr and "needs --type" in run.stderr
    assert not Page.objects.exists()


def test_config_is_read_and_ignored_and_empty_sections_are_fine(tmp_path):
    feed = {"config": {"created": 1, "strict": False}, "products": [], "categories": []}
    run = import_shop(write_json(tmp_path / "feed.json", feed))
    assert run.code == 0
    assert run.stdout == (
        "import_shop: categories 0 created, 0 updated, 0 unchanged, 0 rejected; "
        "products 0 created, 0 updated, 0 unchanged, 0 rejected\n"
    )


def test_small_batches_give_the_same_result(tmp_path):
    path = write_ndjson(tmp_path / "p.ndjson", [product(i) for i in range(1, 8)])
    run = import_shop(path, "--type", "products", "--batch-size", "3")
    assert "products 7 created" in run.stdout
    assert Product.objects.count() == 7


def test_the_help_documents_the_exit_codes(capsys):
    from django.core.management import get_commands, load_command_class

    command = load_command_class(get_commands()["import_shop"], "import_shop")
    assert "Exit status: 0 everything imported; 1 some objects were rejected" in command.help
    assert "2 the file could not be imported at all" in command.help


def test_categories_as_ndjson_build_the_tree_too(tmp_path):
    categories = [
        {"id": 1, "name": "A", "url": "https://shop.example/c/1", "subcategories": [2]},
        {"id": 2, "name": "B", "url": "https://shop.example/c/2", "subcategories": []},
    ]
    assert import_shop(write_ndjson(tmp_path / "c.ndjson", categories), "--type", "categories").code == 0
    assert Category.objects.get(pk=2).parent_id == 1


def test_a_progress_bar_is_drawn_only_on_a_terminal(tmp_path, monkeypatch, capsys):
    from django.core.management.base import OutputWrapper

    path = write_ndjson(tmp_path / "p.ndjson", [product(1)])
    import_shop(path, "--type", "products")
    assert "products:" not in capsys.readouterr().err
    monkeypatch.setattr(OutputWrapper, "isatty", lambda self: True)
    import_shop(path, "--type", "products")
    assert "products:" in capsys.readouterr().err  # tqdm's "products: 100%|…" on the terminal
