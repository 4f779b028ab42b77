"""How fast `ftprep.validate` reads a big chat dataset, against a ceiling measured in the same run.

The ceiling is the least any validator must do: the same newline-aligned byte ranges,
the same worker processes and the same line reader, with ``orjson.loads`` on every
line and nothing else. The ratio ceiling_time / ftprep_time is the figure that
matters (target: 0.8 or more); absolute times depend on the machine and its load.
Each round times the ceiling and then ftprep, each in a fresh process; the median
of the rounds' ratios is the result (one pair swings by +-0.1 on a shared machine).

It also prints where the time goes per line (one process, a sample of lines), and
the peak memory of the validating process and of its largest worker.

    python benchmarks/validate.py                   # 500 MB, then 1 GB for memory
    python benchmarks/validate.py --size 50MB --rss-size 0

Data is generated under a temporary directory that is deleted afterwards.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jiter
import orjson

from ftprep import _native, reader, validator
from ftprep.formats import get_checker
from ftprep.sizes import format_size, parse_size

WORDS = (
    "the chain wheel brake cable gear shifter derailleur cassette tyre tube pressure "
    "saddle frame fork headset bearing spoke rim hub axle pedal crank bottom bracket "
    "ride route climb descent rain mud grease clean check adjust replace tighten "
    "loosen torque wrench stand pump valve presta schrader tubeless sealant puncture "
    "patch lever quick release thru axle disc rotor pad caliper hydraulic bleed "
    'mineral oil DOT fluid café naïve Zürich 東京 🙂 «quoted» "double" back\\slash '
    "note: 10:30 https://example.com/chain"  # colons inside strings, as real text has
).split()
SYSTEM_PROMPTS = [
    "You are a concise support assistant for a bicycle shop. Answer in two sentences.",
    "You are a friendly mechanic. Explain each step and warn about safety issues.",
    "Answer as the shop's booking assistant; never promise a repair date.",
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "check_stock",
            "description": "Units of a part in stock",
            "parameters": {
                "type": "object",
                "properties": {"sku": {"type": "string"}},
                "required": ["sku"],
            },
        },
    }
]


def _text(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(lo, hi)))


def _record(rng: random.Random, n: int, tool_rate: float) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = []
    if rng.random() < 0.6:
        msgs.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    tools = rng.random() < tool_rate
    turns = rng.randint(1, 4)
    for t in range(turns):
        msgs.append({"role": "user", "content": f"#{n}.{t} " + _text(rng, 15, 90)})
        if tools and t == turns - 1:
            call = "".join(rng.choices("abcdefghijkABCDEFGH0123456789", k=9))
            sku = f"SKU-{rng.randint(1, 9999)}"
            msgs.append(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": call,
                            "type": "function",
                            "function": {
                                "name": "check_stock",
                                "arguments": json.dumps({"sku": sku}),
                            },
                        }
                    ],
                }
            )
            msgs.append({"role": "tool", "tool_call_id": call, "content": '{"units": 3}'})
        msgs.append({"role": "assistant", "content": _text(rng, 20, 150)})
    record: dict[str, Any] = {"messages": msgs}
    if tools:
        record["tools"] = TOOLS
    return record


DEFECTS = [
    b'{"messages": [{"role": "user", "content": "hi"},]}',
    b'{"messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "yo"}]}',
    b'{"messages": [{"role": "user", "content": "a", "content": "b"}, '
    b'{"role": "assistant", "content": "yo"}]}',
    b"",
    b'{"messages": [{"role": "user", "content": "caf\xe9"}]}',
]


def generate(path: Path, size: int, *, seed: int = 7, tool_rate: float = 0.05) -> int:
    """Write about ``size`` bytes of chat records with a few defects; return the line count."""
    rng = random.Random(seed)
    written = lines = 0
    defect_every = max(1, size // 2500 // 12)
    first = b""
    with open(path, "wb") as fh:
        batch: list[bytes] = []
        while written < size:
            if lines and lines % defect_every == 0:
                line = rng.choice([*DEFECTS, first])
            else:
                line = orjson.dumps(_record(rng, lines, tool_rate))
                first = first or line
            batch.append(line)
            written += len(line) + 1
            lines += 1
            if len(batch) >= 2000:
                fh.write(b"\n".join(batch) + b"\n")
                batch = []
        if batch:
            fh.write(b"\n".join(batch) + b"\n")
    return lines


# ----------------------------------------------------------------------- the ceiling


def _ceiling_range(task: tuple[str, int, int]) -> int:
    path, start, end = task
    n = 0
    loads = orjson.loads
    with open(path, "rb", buffering=0) as fh:
        for _, raw, _ in reader.iter_lines(fh, start, end):
            if isinstance(raw, bytes):
                try:
                    loads(raw)
                except orjson.JSONDecodeError:
                    pass
            n += 1
    return n


def ceiling(path: str, jobs: int) -> int:
    """orjson on every line over the validator's own ranges and worker processes."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        pieces = min(jobs * 4, max(2, size // max(1, validator.DEFAULT_PARALLEL_THRESHOLD // 4)))
        ranges = validator._range_bounds(fh, 0, size, pieces)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(jobs, len(ranges)), initializer=validator._worker_init) as pool:
        return sum(pool.imap(_ceiling_range, [(path, s, e) for s, e in ranges]))


def _measure(kind: str, path: str, jobs: int, ignore: list[str]) -> None:
    """Run in a fresh process so its peak memory is the validation's alone."""
    start = resource.getrusage(resource.RUSAGE_SELF)
    start_cpu = start.ru_utime + start.ru_stime
    t0 = time.perf_counter()
    if kind == "ceiling":
        detail: Any = ceiling(path, jobs)
    else:
        report = validator.validate([path], jobs=jobs, max_errors=100, ignore=ignore)
        f = report.files[0]
        detail = {"lines": f.lines, "records": f.records, "errors": f.error_count}
    elapsed = time.perf_counter() - t0
    own = _peak_rss()
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    children = usage[1].ru_maxrss * 1024
    # CPU seconds of this process and its (reaped) workers: time a busy neighbour
    # takes from the machine stretches the wall clock but is not counted here.
    cpu = sum(u.ru_utime + u.ru_stime for u in usage) - start_cpu
    print(
        json.dumps(
            {"seconds": elapsed, "cpu": cpu, "rss": own, "child_rss": children, "detail": detail}
        )
    )


def _peak_rss() -> int:
    # VmHWM belongs to this process's memory map, made new by exec; ru_maxrss would
    # carry over the benchmark parent's peak (it is kept across fork and exec).
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_measure(kind: str, path: Path, jobs: int, ignore: list[str]) -> dict[str, Any]:
    flags = [f"--ignore={code}" for code in ignore]
    out = subprocess.run(
        [sys.executable, __file__, "--_measure", kind, str(path), "--jobs", str(jobs), *flags],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------- per-line costs


def breakdown(path: Path, sample: int = 20_000) -> None:
    """Microseconds per line for each step, one process, on the first ``sample`` lines."""
    with open(path, "rb") as fh:
        first = itertools.islice(reader.iter_lines(fh), sample)
        lines = [raw for _, raw, _ in first if isinstance(raw, bytes)]
    checker = get_checker("chat")
    quick = [checker.quick_ok(raw) for raw in lines]
    slow: list[Any] = []
    for raw, q in zip(lines, quick, strict=True):
        if not q and len(slow) < 300:
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                slow.append(record)

    def per_line(fn: Any, items: list[Any]) -> float:
        t0 = time.perf_counter()
        for x in items:
            fn(x)
        return (time.perf_counter() - t0) / max(1, len(items)) * 1e6

    def read_all() -> None:
        with open(path, "rb") as fh:
            for i, _ in enumerate(reader.iter_lines(fh)):
                if i >= sample:
                    break

    t0 = time.perf_counter()
    read_all()
    read_us = (time.perf_counter() - t0) / sample * 1e6

    def loads(x: bytes) -> None:
        try:
            orjson.loads(x)
        except orjson.JSONDecodeError:
            pass

    def dup(x: bytes) -> None:
        try:
            jiter.from_json(x, catch_duplicate_keys=True, cache_mode=False)
        except ValueError:
            pass

    tool_lines = [raw for raw in lines if b'"tool_calls"' in raw]
    rows = [
        ("read + split (iter_lines)", read_us),
        ("orjson.loads (the ceiling's work)", per_line(loads, lines)),
        ("quick_ok (fast path, its scan included)", per_line(checker.quick_ok, lines)),
        (f"  orjson.loads, tool-call lines (n={len(tool_lines)})", per_line(loads, tool_lines)),
        ("  quick_ok, tool-call lines", per_line(checker.quick_ok, tool_lines)),
        ("duplicate keys (jiter; slow-path lines only)", per_line(dup, lines)),
        ("scan: UTF-8, colons, fingerprint", per_line(_native.scan, lines)),
        ("depth screen (count { [)", per_line(lambda x: x.count(b"{") + x.count(b"["), lines)),
        (f"check() on a slow-path record (n={len(slow)})", per_line(checker.check, slow)),
    ]
    share = sum(1 for q in quick if not q) / max(1, len(quick))
    native = "C module" if _native.NATIVE else "pure Python (FTPREP_NO_SPEEDUPS or not built)"
    print(f"per line, one process, {len(lines)} lines ({share:.1%} take the slow path):")
    print(f"  byte passes: {native}")
    for name, us in rows:
        print(f"  {name:45s} {us:9.2f} us")


# ---------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="500MB", help="dataset size for the speed run")
    ap.add_argument("--rss-size", default="1GB", help="dataset size for the memory run; 0 skips")
    ap.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPUs)")
    ap.add_argument("--rounds", type=int, default=5, help="ceiling/ftprep timing pairs")
    ap.add_argument("--tool-rate", type=float, default=0.05, help="share of records with tools")
    ap.add_argument("--ignore", action="append", default=[], help="codes ftprep skips (e.g. FT112)")
    ap.add_argument("--_measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    jobs = args.jobs or validator._default_jobs()
    if args._measure:
        _measure(args._measure[0], args._measure[1], jobs, args.ignore)
        return
    tmp = Path(tempfile.mkdtemp(prefix="ftprep-bench-"))
    try:
        size = parse_size(args.size)
        path = tmp / "chat.jsonl"
        t0 = time.perf_counter()
        n = generate(path, size, tool_rate=args.tool_rate)
        print(
            f"generated {format_size(path.stat().st_size)}, {n} lines "
            f"({args.tool_rate:.0%} with tool calls) in {time.perf_counter() - t0:.1f}s"
        )
        breakdown(path)
        mb = path.stat().st_size / 1e6
        print(f"jobs={jobs}, {args.rounds} rounds, each timing the ceiling then ftprep")
        ratios: list[float] = []
        cpu_ratios: list[float] = []
        for n in range(1, args.rounds + 1):
            ceil = run_measure("ceiling", path, jobs, [])
            ours = run_measure("ftprep", path, jobs, args.ignore)
            ratios.append(ceil["seconds"] / ours["seconds"])
            cpu_ratios.append(ceil["cpu"] / ours["cpu"])
            print(
                f"  round {n}: ceiling {ceil['seconds']:5.2f}s ({mb / ceil['seconds']:5.0f} MB/s), "
                f"ftprep {ours['seconds']:5.2f}s ({mb / ours['seconds']:5.0f} MB/s), "
                f"ratio {ratios[-1]:.2f}; CPU {ceil['cpu']:5.2f}s vs {ours['cpu']:5.2f}s"
            )
        print(
            f"  ratio ceiling/ftprep: median {statistics.median(ratios):.2f} "
            f"(rounds {min(ratios):.2f}-{max(ratios):.2f}; target >= 0.80)"
        )
        print(
            f"  CPU-time ratio ceiling/ftprep: median {statistics.median(cpu_ratios):.2f} "
            f"(rounds {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f}; steadier than the wall clock)"
        )
        print(f"  ftprep result: {ours['detail']}")
        path.unlink()
        rss_size = parse_size(args.rss_size) if args.rss_size not in ("0", "") else 0
        if rss_size:
            generate(path, rss_size, seed=8, tool_rate=args.tool_rate)
            mem = run_measure("ftprep", path, jobs, args.ignore)
            print(
                f"memory on {format_size(path.stat().st_size)}: validating process peak "
                f"{format_size(mem['rss'])}, largest worker peak {format_size(mem['child_rss'])}, "
                f"at most {format_size(mem['rss'] + jobs * mem['child_rss'])} together "
                f"({mem['seconds']:.1f}s)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
