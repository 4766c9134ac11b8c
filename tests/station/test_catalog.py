"""station.controllers.catalog: orders.csv rows with and without a count, its errors, and what the order box says."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.controllers.catalog import EnrolledType, OrderBook, TypeCatalog, resolve_entry


def _catalog(*types: str) -> TypeCatalog:
    return TypeCatalog([EnrolledType(t, t) for t in types], lambda _t, _s: None)


def test_orders_csv_with_and_without_counts(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "# a comment\n"
        "order,type,count\n"
        "A-1,t0001,20\n"
        "A-2, t0002 ,\n"  # an empty count: any number of coins
        "A-3,t0003\n"
        " A-4 ,t0001, 5 \n"
        "A-1,t0002\n",  # a later row of an order replaces the earlier one whole, count included
        encoding="utf-8",
    )
    book = OrderBook.from_csv(path)
    assert len(book) == 4
    assert [(o, book.lookup(o), book.count(o)) for o in ("A-1", "A-2", "A-3", "A-4", "Z-9")] == [
        ("A-1", "t0002", None),
        ("A-2", "t0002", None),
        ("A-3", "t0003", None),
        ("A-4", "t0001", 5),
        ("Z-9", None, None),
    ]
    assert book.count(" A-4 ") == 5  # as a scanner may send it
    assert book.comment_lines == (1,)
    assert OrderBook.from_csv(tmp_path / "absent.csv").lookup("A-1") is None


@pytest.mark.parametrize(
    ("text", "comments"),
    [
        ("order,type,count\n#1001,t0001,5\n#1002,t0002,3\n", ()),  # Shopify numbers its orders #1001
        ("# today's orders\norder,type,count\n#1001,t0001,5\n#1002,t0002,3\n", (1,)),
        ("#1001,t0001,5\n#1002,t0002,3\n", ()),  # no header: every row is an order
        ("name,order,type,count\n#note,#1001,t0001,5\n#x,#1002,t0002,3\n", ()),  # the first column is not the order
    ],
)
def test_an_order_number_starting_with_a_hash_is_read(tmp_path: Path, text: str, comments: tuple[int, ...]) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(text, encoding="utf-8")
    book = OrderBook.from_csv(path)
    assert [(o, book.lookup(o), book.count(o)) for o, _ in book.items()] == [
        ("#1001", "t0001", 5),
        ("#1002", "t0002", 3),
    ]
    assert book.comment_lines == comments


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("order,type\nA-1,t0001\n# closed today\n", 3),  # below the header a # row is an order: it has no type
        ("# today's orders\nA-1,t0001\n", 1),  # without a header too
    ],
)
def test_a_hash_row_that_is_no_order_is_named_not_passed_over(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=rf"orders\.csv:{line}: expected .* a comment only above the header row"):
        OrderBook.from_csv(path)


def test_a_header_places_the_columns_and_other_columns_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text('Order,Customer,Count,Type\nA-1,Ann Lee,20,t0001\nA-2,"Bo, Inc.",,t0002\n', encoding="utf-8")
    book = OrderBook.from_csv(path)
    assert [(o, book.lookup(o), book.count(o)) for o, _ in book.items()] == [
        ("A-1", "t0001", 20),
        ("A-2", "t0002", None),
    ]
    path.write_text("order,customer\nA-1,Ann Lee\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"orders\.csv:1: the header names no 'type' column"):
        OrderBook.from_csv(path)
    path.write_text("order,type\nA-1,t0001,7\n", encoding="utf-8")  # no count column named: none read
    assert OrderBook.from_csv(path).count("A-1") is None


@pytest.mark.parametrize(
    "text",
    [
        "count,order,type\n20,A-1,t0001\n",
        "Customer,Order,Type,Count\nAnn Lee,A-1,t0001,20\n",
        "type,order,count\nt0001,A-1,20\n",
        "\ufefforder,type,count\nA-1,t0001,20\n",  # a spreadsheet's UTF-8 export starts with a byte-order mark
        "\n,,\n# today's orders\norder,type,count\nA-1,t0001,20\n",  # blank, empty-cell and comment rows first
    ],
)
def test_a_header_is_found_whatever_column_comes_first(tmp_path: Path, text: str) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(text, encoding="utf-8")
    book = OrderBook.from_csv(path)
    assert (len(book), book.lookup("A-1"), book.count("A-1")) == (1, "t0001", 20)


def test_an_order_book_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes("A-1,t0001,3\nA-2,Münze,4\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"orders\.csv: not UTF-8 text \(byte 17\): save it .* as CSV UTF-8"):
        OrderBook.from_csv(path)


def test_a_header_without_an_order_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("type,count\nt0001,20\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"orders\.csv:1: the header names no 'order' column"):
        OrderBook.from_csv(path)


@pytest.mark.parametrize("count", ["0", "-3", "twenty", "2.5", "²"])
def test_a_count_that_is_not_a_whole_number_of_coins_names_its_line(tmp_path: Path, count: str) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(f"A-1,t0001,4\nA-2,t0001,{count}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"orders.csv:2: the count of order A-2 must be a whole number ≥ 1"):
        OrderBook.from_csv(path)
    with pytest.raises(ValueError, match="at least one coin"):
        OrderBook({"A-1": "t0001"}, {"A-1": 0})


def test_the_order_box_says_the_type_and_the_count() -> None:
    book = OrderBook({"A-1": "t0001", "A-2": "t0001", "A-3": "t0404"}, {"A-1": 12})
    catalog = _catalog("t0001", "t0002")
    counted = resolve_entry("A-1", book, catalog)
    assert (counted.type_id, counted.order, counted.count, counted.message) == (
        "t0001",
        "A-1",
        12,
        "Order A-1: 12 × t0001",
    )
    assert resolve_entry("A-2", book, catalog).message == "Order A-2: t0001"
    assert resolve_entry("A-2", book, catalog).count is None
    assert resolve_entry("A-3", book, catalog).message == "Order A-3 asks for t0404, which is not enrolled."
    picked = resolve_entry("t0002", book, catalog)  # a type typed in: no order, no count
    assert (picked.type_id, picked.order, picked.count) == ("t0002", None, None)
