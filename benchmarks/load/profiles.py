"""``--profile``: where the workers spend a workload's time, sampled with py-spy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks import load_data
from benchmarks.load.bench import Bench
from benchmarks.load.server import Server
from benchmarks.load.workloads import Workload
from benchmarks.load_data import SetupError
from commentsvc import PROJECT_ROOT

PROFILES_DIR = load_data.CACHE_ROOT / "profiles"
#: Where a frame's file lives, left out: installed packages, the standard library, this checkout.
_PATH_PREFIX = re.compile(
    r"\(/\S*?/(site-packages|lib/python3\.\d+)/|\(" + re.escape(f"{PROJECT_ROOT}/")
)

#: Frames every sample of a gunicorn worker has, above the request it serves.
SCAFFOLDING = re.compile(
    r"\((<frozen runpy>|gunicorn/(__main__|arbiter|app/\w+|workers/base)\.py)\)$"
    r"|^SyncWorker\.(run|run_for_one|accept|handle) \("
)


@dataclass
class Profile:
    """A workload's samples: the raw stacks, and the top functions and packages."""

    workload: Workload
    samples: int
    raw: Path
    inclusive: list[tuple[str, float]]
    packages: list[tuple[str, float]]


def py_spy() -> str:
    """The py-spy program, beside this interpreter or on the PATH; exit when there is none."""
    found = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if found is None:
        sys.exit("benchmarks.load: --profile needs py-spy: .venv/bin/pip install py-spy")
    return found


def profile(bench: Bench, workload: Workload, server: Server, stem: str) -> Profile:
    """Sample every worker with py-spy while wrk runs the workload once more."""
    PROFILES_DIR.mkdir(parents=True, exist_ok=True)
    raw = PROFILES_DIR / f"{stem}-{workload.key}.txt"
    seconds = bench.settings.duration
    recorder = subprocess.Popen(
        [
            py_spy(),
            "record",
            f"--pid={server.gunicorn.pid}",
            "--subprocesses",
            "--nonblocking",
            "--rate=250",
            "--format=raw",
            f"--output={raw}",
            f"--duration={seconds:g}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)  # attached before the load starts
    bench.wrk(workload, server, seconds + 1)
    bench.remaining -= 1
    _, errors = recorder.communicate(timeout=60)
    if recorder.returncode != 0 or not raw.exists():
        raise SetupError(f"py-spy failed: {errors}")
    return summarize_profile(workload, raw)


def _frame(label: str) -> str:
    """``handle (gunicorn/workers/sync.py:136)`` -> ``handle (gunicorn/workers/sync.py)``."""
    label = re.sub(r":\d+\)$", ")", label)
    return _PATH_PREFIX.sub("(", label)


def summarize_profile(workload: Workload, raw: Path, top: int = 25) -> Profile:
    """Share of samples in each function (counted once per stack) and in each package."""
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # With --subprocesses the first frames name the processes.
        frames = [_frame(frame) for frame in stack.split(";") if not frame.startswith("process ")]
        total += count
        for frame in set(frames):
            if not SCAFFOLDING.search(frame):
                inclusive[frame] += count
        if frames:
            packages[_package(frames[-1])] += count
    share = 100.0 / total if total else 0.0
    return Profile(
        workload,
        total,
        raw,
        [(frame, count * share) for frame, count in inclusive.most_common(top)],
        [(package, count * share) for package, count in packages.most_common(top)],
    )


def _package(frame: str) -> str:
    """``Session.execute (sqlalchemy/orm/session.py)`` -> ``sqlalchemy``; ``socket.py`` alone."""
    match = re.search(r"\(([^()]*)\)$", frame)
    path = match.group(1) if match else frame
    return path.split("/", 1)[0] if "/" in path else path
