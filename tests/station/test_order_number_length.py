"""An order number longer than the verdict log keeps is refused as ``orders.csv`` is read, with its line: SQLite
would store it, but PostgreSQL refuses every verdict of that order, and each of its cups would be set aside
unsaved."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.schema import NAME_LEN
from station.controllers.catalog import OrderBook, read_orders


def test_an_order_number_the_database_cannot_keep_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    longest = "A" * NAME_LEN
    too_long = "SO-" + "7" * 77  # 80 characters
    path.write_text(f"order,type,count\n{longest},t0001,3\n{too_long},t0002,5\n")
    with pytest.raises(ValueError) as caught:
        OrderBook.from_csv(path)
    assert str(caught.value) == (
        f"{path}:3: the order number SO-777777777777777777777… is 80 characters long, and the verdict log keeps at "
        f"most {NAME_LEN}: shorten it in the order system"
    )
    book, why = read_orders(path)  # the window keeps the orders read before, and says why
    assert book is None and why == str(caught.value)

    path.write_text(f"order,type,count\n{longest},t0001,3\n")
    assert OrderBook.from_csv(path).lookup(longest) == "t0001"


def test_a_type_the_database_cannot_keep_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(f"A-1001,{'t' * (NAME_LEN + 1)}\n")
    with pytest.raises(ValueError, match=rf"orders.csv:1: the type t+… is {NAME_LEN + 1} characters long"):
        OrderBook.from_csv(path)
