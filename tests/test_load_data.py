"""The load benchmark's seed (benchmarks/load_data.py) fills every column of the tables it
writes in bulk: a migration that adds one must update it here, in ``make test``, not be
found out when someone next runs ``make bench``. And the ``queue`` database is what its
workloads say: the blocklist and the counted pages on its busiest site."""

from __future__ import annotations

from array import array
from collections import Counter

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


def test_the_queue_database_guards_and_counts_pages_of_its_busiest_site() -> None:
    plan = load_data.queue_plan(1_000_000)  # the benchmark's default
    comments = Counter(plan.comment_pages)
    by_site: Counter[int] = Counter()
    for page, count in comments.items():
        by_site[plan.pages[page][0]] += count
    busiest = by_site.most_common(1)[0][0]
    assert plan.blocklist_site == load_data.QUEUE_GUARDED_SITE == plan.sites[busiest]
    on_site = {
        key: comments[page] for page, (site, key) in enumerate(plan.pages) if site == busiest
    }
    counted = [on_site[key] for key in load_data.QUEUE_COUNT_PAGES]
    assert len(set(load_data.QUEUE_COUNT_PAGES)) == 20
    # From the site's busiest page to one of its quietest quarter: a few busy, most not.
    assert counted[0] == max(on_site.values())
    assert counted[-1] <= sorted(on_site.values())[len(on_site) // 4]
    assert sum(count > 10 * counted[-1] for count in counted) in range(2, 10)
