"""wrk, the HTTP load generator: one run from a separate process, and what it reports."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.load_data import SetupError


@dataclass
class WrkRun:
    """What one wrk run reports, plus the answers its Lua script counted."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: int
    statuses: Counter[int]
    ids: list[int] = field(default_factory=list)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise SetupError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkRun:
    """The figures of wrk's ``--latency`` report and the ``@status`` lines of the Lua script."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.M)
        if match is None:
            raise SetupError(f"unexpected wrk output (no {pattern!r}):\n{output}")
        return match

    total = find(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkRun(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2) + total.group(3)) / 1000,
        rps=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)").group(1)),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
        statuses=Counter(
            {
                int(code): int(count)
                for code, count in re.findall(r"^@status (\d+) (\d+)$", output, re.M)
            }
        ),
    )


@dataclass(frozen=True)
class WrkLoad:
    """How wrk loads the server: threads and connections, the Lua script and its arguments."""

    threads: int
    connections: int
    script: Path
    headers: Sequence[str] = ()
    script_args: Sequence[str] = ()


def run_wrk(url: str, load: WrkLoad, seconds: float, env: Mapping[str, str]) -> WrkRun:
    """One wrk run against ``url`` for ``seconds`` (whole seconds: wrk takes no less)."""
    command = ["wrk", "-t", str(load.threads), "-c", str(load.connections)]
    command += ["-d", f"{max(1, round(seconds))}s", "--timeout", "5s", "--latency"]
    command += ["-s", str(load.script)]
    for header in load.headers:
        command += ["-H", header]
    command.append(url)
    if load.script_args:
        command += ["--", *load.script_args]
    result = subprocess.run(command, capture_output=True, text=True, env=dict(env), check=False)
    if result.returncode != 0:
        raise SetupError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return parse_wrk(result.stdout)


def wrk_version() -> str:
    """wrk's version line, without its copyright."""
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (result.stdout + result.stderr).split(" Copyright")[0].strip()


def require_wrk() -> None:
    """Exit with how to install wrk when it is missing."""
    if shutil.which("wrk") is None:
        sys.exit(
            "benchmarks.load: wrk is not installed (it is the HTTP load generator this"
            " benchmark uses).\n"
            "Install it: sudo apt-get install wrk (Debian/Ubuntu), brew install wrk (macOS)."
        )
