"""The load benchmark's seed (benchmarks/load_data.py) fills every column of the tables it
writes in bulk: a migration that adds one must update it here, in ``make test``, not be
found out when someone next runs ``make bench``."""

from __future__ import annotations

from array import array

from benchmarks import load_data


def test_the_seed_names_every_column_of_the_tables_it_writes() -> None:
    load_data.check_columns()  # raises SetupError naming the columns that differ


def test_each_seeded_comment_has_a_value_for_each_named_column() -> None:
    plan = load_data.Plan(
        sites=("s",),
        pages=[(0, "/p")],
        comment_pages=array("i", [0, 0]),
        comment_statuses=bytes([load_data.APPROVED, load_data.PENDING]),
    )
    rows = list(load_data.comment_rows(plan, [1], moderator_id=1))
    assert [len(row) for row in rows] == [len(load_data.COMMENT_COLUMNS)] * 2
    by_name = dict(zip(load_data.COMMENT_COLUMNS, rows[1], strict=True))
    assert (by_name["status"], by_name["notify_replies"], by_name["edit_token_hash"]) == (
        "pending",
        False,
        None,
    )
