"""How fast ``commentsvc import wordpress`` and ``commentsvc export`` are, and whether their
memory stays flat as the site grows (DESIGN §9).

python -m benchmarks.imports [--sizes 10000,100000,1000000] [--cache-dir DIR] [--keep]

For each size N it makes (once; cached in ``--cache-dir``, by default
``benchmarks/.cache/imports/``) a WordPress export (WXR 1.2) of N comments, written as it
is generated so that memory stays flat however large the file:

- about 100 comments per post (50 to 150), the posts' comments overlapping in time, so the
  file is not in time order;
- about one comment in four a reply to an earlier comment of its post (replies of replies
  included);
- bodies of about 100 to 800 characters as WordPress stores them: line breaks and blank
  lines, entities (``&amp;``, ``&#8217;``, ``&nbsp;``, ``&lt;``, ``&quot;``), some links
  (``<a href rel="nofollow ugc">``), emphasis, ``<br />``, a few ``<p>``, ``<blockquote>``,
  ``<code>`` and ``<abbr title>`` (which only markdownify reads);
- about 2% pending, 2% spam, 1% trashed, 1.5% pingbacks and 0.5% trackbacks.

Then, on a fresh SQLite database made with the real CLI (``commentsvc db upgrade``,
``commentsvc sites add``), it runs ``commentsvc import wordpress FILE --site bench`` and
``commentsvc export --site bench --output FILE`` as child processes, each timed from start
to exit (interpreter start-up included) with its peak resident memory read from the
kernel's accounting of that child (``wait4``). Interpreter and application start-up is
measured alone too (``commentsvc sites list`` on the same database), so that the rates can
be read with and without it.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from benchmarks.load.machine import git_commit
from benchmarks.load.procstat import CPUS, field_of, machine_busy_seconds
from commentsvc import PROJECT_ROOT
from tests.support.service import commentsvc_script, run_cli, service_env

SITE = "bench"
ORIGIN = "https://bench.example"
#: Bump when the generated files change, so that cached ones are made again.
FILE_FORMAT = 1
SEED = 20251201
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
CACHE_DIR = PROJECT_ROOT / "benchmarks" / ".cache" / "imports"
EPOCH = datetime(2019, 1, 1)
HISTORY_DAYS = 6 * 365

VOCABULARY = (
    "the article makes a good point about how we measure latency under load and why the "
    "median alone hides what readers feel when a page is slow thanks for the numbers but I "
    "would like to see the same test on a busier machine with more data perhaps next time "
    "you could also compare it with last year and explain where the time goes in practice "
    "this matches what we saw at work although our figures were somewhat lower"
)
WORDS = tuple(VOCABULARY.split())
FIRST_NAMES = ("Ada", "Grace", "Alan", "Zoë", "Linus", "Margaret", "Ken", "Barbara", "李", "Ådne")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Ångström", "Hamilton", "Thompson", "Liskov", "小龍")
ENTITIES = ("&amp;", "&#8217;", "&nbsp;", "&lt;3", "&quot;", "&#8230;", "&gt;", "&#8220;")


@dataclass(frozen=True)
class Measurement:
    """One child process: wall seconds from start to exit, CPU seconds (user and system),
    and its peak resident memory."""

    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    #: The share of the machine's CPUs that other processes used meanwhile (this is a
    #: shared machine): what the wall time may owe to them.
    others: float
    output: str


def _sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(6, 16))
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice((".", ".", ".", "?", "!"))


def _markup(rng: random.Random, text: str, tags: bool) -> str:
    """Entities, and with ``tags`` maybe some markup, in a paragraph of plain words."""
    words = text.split(" ")
    roll = rng.random() if tags else 1.0
    if roll < 0.10 and len(words) > 4:
        at = rng.randrange(len(words) - 3)
        href = f"https://example.org/notes/{rng.randrange(10_000)}"
        words[at : at + 2] = [
            f'<a href="{href}" rel="nofollow ugc">{" ".join(words[at : at + 2])}</a>'
        ]
    elif roll < 0.16:
        at = rng.randrange(len(words))
        tag = rng.choice(("em", "strong"))
        words[at] = f"<{tag}>{words[at]}</{tag}>"
    elif roll < 0.19 and len(words) > 2:
        at = rng.randrange(1, len(words))
        words[at] = f"<br />\n{words[at]}"
    elif roll < 0.20:
        words[0] = f"<code>{words[0]}</code>"
    elif roll < 0.22:
        words.append('<abbr title="for example">e.g.</abbr>')
    for _ in range(rng.choice((0, 0, 0, 0, 0, 0, 0, 1, 1, 2))):
        words.insert(rng.randrange(len(words) + 1), rng.choice(ENTITIES))
    return " ".join(words)


def body(rng: random.Random) -> str:
    """A comment's content as a WordPress export has it (HTML whose newlines count), of
    about 100 to 800 characters."""
    length = rng.randint(100, 640)
    paragraphs: list[str] = []
    size = 0
    while size < length:
        paragraph = _sentence(rng)
        while size + len(paragraph) < length and rng.random() < 0.6:
            paragraph += " " + _sentence(rng)
        paragraphs.append(paragraph)
        size += len(paragraph)
    marked = rng.randrange(len(paragraphs))
    text = ""
    for number, paragraph in enumerate(paragraphs):
        if number:
            text += "\n\n" if rng.random() < 0.7 else "\n"
        text += _markup(rng, paragraph, tags=number == marked)
    roll = rng.random()
    if roll < 0.02:
        text = f"<p>{text}</p>"
    elif roll < 0.03:
        text = f"<blockquote>{_sentence(rng)}</blockquote>\n\n{text}"
    elif roll < 0.04:
        text = f"> {text}"
    return text


def _kind_and_status(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.015:
        return "pingback", "1"
    if roll < 0.02:
        return "trackback", "1"
    if roll < 0.04:
        return "comment", "0"
    if roll < 0.06:
        return "comment", "spam"
    if roll < 0.07:
        return "comment", "trash"
    return "comment", "1"


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def write_wxr(out: TextIO, comments: int, seed: int = SEED) -> None:
    """A WXR 1.2 file of ``comments`` comments, written as it is generated."""
    rng = random.Random(seed)
    out.write(
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        '<rss version="2.0"\n'
        '\txmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"\n'
        '\txmlns:content="http://purl.org/rss/1.0/modules/content/"\n'
        '\txmlns:wfw="http://wellformedweb.org/CommentAPI/"\n'
        '\txmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '\txmlns:wp="http://wordpress.org/export/1.2/">\n'
        f"<channel>\n\t<title>Bench</title>\n\t<link>{ORIGIN}</link>\n"
        "\t<wp:wxr_version>1.2</wp:wxr_version>\n"
    )
    written = 0
    post = 0
    while written < comments:
        post += 1
        count = min(rng.randint(50, 150), comments - written)
        published = EPOCH + timedelta(days=rng.uniform(0, HISTORY_DAYS))
        slug = f"{published:%Y/%m}/post-{post}"
        out.write(
            f"\t<item>\n\t\t<title>Post number {post} &amp; its comments</title>\n"
            f"\t\t<link>{ORIGIN}/{slug}/</link>\n"
            f"\t\t<wp:post_id>{post}</wp:post_id>\n"
            "\t\t<wp:post_type><![CDATA[post]]></wp:post_type>\n"
        )
        moment = published
        ids: list[int] = []
        for _ in range(count):
            written += 1
            moment += timedelta(seconds=rng.expovariate(1 / 3600))
            parent = rng.choice(ids) if ids and rng.random() < 0.25 else 0
            ids.append(written)
            kind, approved = _kind_and_status(rng)
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            author = rng.randrange(50_000)
            url = f"https://{last.lower()}-{author}.example/" if rng.random() < 0.3 else ""
            local = moment + timedelta(hours=2)
            out.write(
                "\t\t<wp:comment>\n"
                f"\t\t\t<wp:comment_id>{written}</wp:comment_id>\n"
                f"\t\t\t<wp:comment_author>{_cdata(f'{first} {last}')}</wp:comment_author>\n"
                "\t\t\t<wp:comment_author_email>"
                f"{_cdata(f'reader{author}@example.com')}</wp:comment_author_email>\n"
                f"\t\t\t<wp:comment_author_url>{url}</wp:comment_author_url>\n"
                "\t\t\t<wp:comment_author_IP>"
                f"{_cdata(f'203.0.113.{author % 250}')}</wp:comment_author_IP>\n"
                f"\t\t\t<wp:comment_date>{_cdata(f'{local:%Y-%m-%d %H:%M:%S}')}</wp:comment_date>\n"
                "\t\t\t<wp:comment_date_gmt>"
                f"{_cdata(f'{moment:%Y-%m-%d %H:%M:%S}')}</wp:comment_date_gmt>\n"
                f"\t\t\t<wp:comment_content>{_cdata(body(rng))}</wp:comment_content>\n"
                f"\t\t\t<wp:comment_approved>{_cdata(approved)}</wp:comment_approved>\n"
                f"\t\t\t<wp:comment_type>{_cdata(kind)}</wp:comment_type>\n"
                f"\t\t\t<wp:comment_parent>{parent}</wp:comment_parent>\n"
                "\t\t\t<wp:comment_user_id>0</wp:comment_user_id>\n"
                "\t\t</wp:comment>\n"
            )
        out.write("\t</item>\n")
    out.write("</channel>\n</rss>\n")


def wxr_file(cache: Path, comments: int) -> Path:
    """The cached WXR file of ``comments`` comments (made first when missing)."""
    path = cache / f"wordpress-{comments}-v{FILE_FORMAT}.xml"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        started = time.perf_counter()
        with partial.open("w", encoding="utf-8", newline="\n") as out:
            write_wxr(out, comments)
        partial.rename(path)
        elapsed = time.perf_counter() - started
        print(f"made {path} ({path.stat().st_size / 2**20:,.0f} MiB) in {elapsed:.0f} s")
    return path


def measure(args: Sequence[str], env: dict[str, str], log: Path) -> Measurement:
    """Run ``commentsvc ARGS`` to its end: wall time and the child's own peak RSS."""
    with log.open("w") as out:
        busy = machine_busy_seconds()
        started = time.perf_counter()
        process = subprocess.Popen(
            [commentsvc_script(), *args], env=env, cwd=PROJECT_ROOT, stdout=out, stderr=out
        )
        # wait4 reports the resources of this child alone (RUSAGE_CHILDREN would give the
        # largest child this process ever waited for).
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        busy = machine_busy_seconds() - busy
    process.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text()
    if process.returncode != 0:
        raise SystemExit(f"commentsvc {' '.join(args)} failed:\n{output}")
    cpu = usage.ru_utime + usage.ru_stime
    others = max(0.0, busy - cpu) / (elapsed * CPUS)
    return Measurement(elapsed, cpu, usage.ru_maxrss / 1024, others, output)


def exported_comments(path: Path) -> int:
    with path.open(encoding="utf-8") as lines:
        return sum(1 for line in lines if line.startswith('{"type":"comment"'))


def wxr_comments(path: Path) -> int:
    """The ``wp:comment`` elements of a WXR export (the writer puts one a line)."""
    with path.open(encoding="utf-8") as lines:
        return sum(1 for line in lines if line.strip() == "<wp:comment>")


@dataclass(frozen=True)
class Row:
    """One size: what the import said and both measurements."""

    comments: int
    imported: int
    summary: str
    importing: Measurement
    exported: int
    exporting: Measurement
    #: ``commentsvc export --format wxr`` of the same site.
    wxr: Measurement


def run_size(workdir: Path, cache: Path, comments: int) -> tuple[Row, list[Measurement]]:
    """Import the file of ``comments`` comments into a fresh database, then export it."""
    source = wxr_file(cache, comments)
    work = workdir / str(comments)
    work.mkdir()
    env = service_env(f"sqlite:///{work / 'commentsvc.db'}")
    run_cli(env, "db", "upgrade")
    run_cli(env, "sites", "add", SITE, "--origin", ORIGIN)
    startup = [measure(["sites", "list"], env, work / "startup.log") for _ in range(3)]
    print(f"importing {comments:,} comments …", flush=True)
    importing = measure(
        ["import", "wordpress", str(source), "--site", SITE], env, work / "import.log"
    )
    summary = importing.output.strip().splitlines()[-1]
    found = re.match(r"imported (\d+) comments", summary)
    if found is None:
        raise SystemExit(f"unexpected import output: {importing.output}")
    export = work / "export.jsonl"
    exporting = measure(
        ["export", "--site", SITE, "--output", str(export)], env, work / "export.log"
    )
    exported = exported_comments(export)
    if exported != int(found.group(1)):
        raise SystemExit(f"imported {found.group(1)} comments but exported {exported}")
    wxr = work / "export.xml"
    wxr_exporting = measure(
        ["export", "--site", SITE, "--format", "wxr", "--output", str(wxr)],
        env,
        work / "export-wxr.log",
    )
    if wxr_comments(wxr) != exported:
        raise SystemExit(
            f"exported {exported} comments as JSON Lines but {wxr_comments(wxr)} as WXR"
        )
    row = Row(comments, int(found.group(1)), summary, importing, exported, exporting, wxr_exporting)
    return row, startup


def machine() -> str:
    model = field_of(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text())
    ram_kib = int(field_of(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()))
    return (
        f"{model}, nproc {CPUS}, {ram_kib / 1024 / 1024:.1f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


def report(rows: Sequence[Row], startup: Sequence[Measurement]) -> Iterator[str]:
    """The Markdown report of a run."""
    yield f"# Import and export benchmark (SQLite, commit {git_commit()})\n"
    yield f"{machine()}\n"
    yield (
        "| comments | import s (CPU s) | import comments/s | import peak RSS MiB"
        " | export s (CPU s) | export comments/s | export peak RSS MiB"
        " | WXR export s | WXR comments/s | WXR peak RSS MiB |"
    )
    yield "|---|---|---|---|---|---|---|---|---|---|"
    for row in rows:
        importing, exporting, wxr = row.importing, row.exporting, row.wxr
        yield (
            f"| {row.imported:,} of {row.comments:,}"
            f" | {importing.seconds:.1f} ({importing.cpu_seconds:.1f})"
            f" | **{row.imported / importing.seconds:,.0f}**"
            f" | {importing.peak_rss_mib:,.0f}"
            f" | {exporting.seconds:.1f} ({exporting.cpu_seconds:.1f})"
            f" | **{row.exported / exporting.seconds:,.0f}**"
            f" | {exporting.peak_rss_mib:,.0f}"
            f" | {wxr.seconds:.1f} | **{row.exported / wxr.seconds:,.0f}**"
            f" | {wxr.peak_rss_mib:,.0f} |"
        )
    seconds = statistics.median(m.seconds for m in startup)
    rss = statistics.median(m.peak_rss_mib for m in startup)
    yield (
        f"\nStart-up alone (`commentsvc sites list` on the same database, median of"
        f" {len(startup)}): {seconds:.2f} s, peak RSS {rss:.0f} MiB. Rates without it,"
        " and the share of the machine's CPUs others used during each run:\n"
    )
    for row in rows:
        importing, exporting = row.importing, row.exporting
        yield (
            f"- {row.imported:,}: import {row.imported / (importing.seconds - seconds):,.0f}"
            f" comments/s (others {importing.others:.0%}), export"
            f" {row.exported / (exporting.seconds - seconds):,.0f} comments/s"
            f" (others {exporting.others:.0%})"
        )
    yield ""
    for row in rows:
        yield f"- {row.comments:,}: `{row.summary}`"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in DEFAULT_SIZES),
        help="comma-separated numbers of comments (default %(default)s)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=CACHE_DIR,
        help="where the generated WXR files are kept (default benchmarks/.cache/imports)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the databases and exports, and say where"
    )
    args = parser.parse_args()
    sizes = [int(size.replace("_", "")) for size in args.sizes.split(",") if size.strip()]
    os.environ.setdefault("COMMENTSVC_ENV_FILE", os.devnull)
    workdir = Path(tempfile.mkdtemp(prefix="commentsvc-import-bench-"))
    rows: list[Row] = []
    startup: list[Measurement] = []
    try:
        for size in sizes:
            row, started = run_size(workdir, args.cache_dir, size)
            rows.append(row)
            startup += started
    finally:
        if args.keep:
            print(f"databases and exports kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("\n".join(report(rows, startup)))


if __name__ == "__main__":
    main()
