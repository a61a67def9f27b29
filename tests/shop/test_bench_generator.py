"""`bench/gen_products.py`: the generator of the million-product file is deterministic and valid."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from shop.models import Category, Product
from tests.shop.helpers import import_shop

pytestmark = pytest.mark.django_db

GENERATOR = Path(__file__).resolve().parents[2] / "bench" / "gen_products.py"


def generator():
    spec = importlib.util.spec_from_file_location("gen_products", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("fmt", ["ndjson", "json", "feed"])
def test_the_generated_file_is_the_same_each_time_and_imports_cleanly(tmp_path, fmt):
    gen = generator()
    first, second = tmp_path / "a", tmp_path / "b"
    for path in (first, second):
        gen.main(["--products", "300", "--categories", "60", "--format", fmt, "--out", str(path)])
    assert first.read_bytes() == second.read_bytes()
    args = () if fmt == "feed" else ("--type", "products")
    run = import_shop(first, *args)
    assert run.code == 0, run.stderr
    assert Product.objects.count() == 300
    assert Product.objects.filter(index=False).exists()
    if fmt == "feed":
        assert Category.objects.filter(parent__isnull=True).count() == 20
