"""How fast and how lean `ftprep split` is, against GNU `split -C` run on the same file.

Generates a JSONL file (1 GB by default), then alternates runs of

    split -C LIMIT FILE OUT/x                          (the baseline: no hashing, no fsync)
    python -m ftprep split FILE --max-size LIMIT ...   (shards + line counts + fsync)
    python -m ftprep split ... -o json                 (the same + each shard's sha256)

and the library call (which computes the sha256 too) without the command line's
start-up, each in its own
process, timing the wall clock and reading the child's CPU time and peak RSS (from
GNU time when installed, else wait4()). It prints the medians, the ratios to split
(the CPU ratio moves less with the machine's load), and whether the targets hold:
wall time within 1.5x of split, peak RSS under 64 MB. All tools write to the same
filesystem, and dirty pages are flushed (sync) before each run. On a shared machine
the figures are noisy: compare the ratios, not the seconds, and run it twice.

    python benchmarks/split.py                      # 1 GB in the system temp dir
    python benchmarks/split.py --size 200MB --runs 5 --dir /var/tmp
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ftprep.sizes import format_size, parse_size

WALL_RATIO_TARGET = 1.5
RSS_TARGET = 64 * 2**20
HAVE_GNU_TIME = os.access("/usr/bin/time", os.X_OK)


def generate(path: Path, size: int, seed: int = 7) -> int:
    """Write about ``size`` bytes of chat records of varied length; return the line count."""
    rng = random.Random(seed)
    words = "alpha beta gamma delta model train token vector answer question data".split()
    block = []
    for i in range(5000):
        n = rng.randint(3, 160)
        text = " ".join(rng.choice(words) for _ in range(n))
        rec = {
            "messages": [
                {"role": "user", "content": f"#{i} {text}"},
                {"role": "assistant", "content": text[::-1]},
            ]
        }
        block.append(json.dumps(rec).encode() + b"\n")
    lines = 0
    written = 0
    with path.open("wb") as fh:
        turn = 0
        while written < size:
            k = (turn * 389) % len(block)  # rotate so the shards do not repeat exactly
            chunk = b"".join(block[k:] + block[:k])
            fh.write(chunk)
            written += len(chunk)
            lines += len(block)
            turn += 1
    return lines


def run(argv: list[str], work: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS in bytes of one child."""
    # The peak comes from GNU time when it is installed: wait4() on a child that Python
    # started reports the larger of the child's peak and the parent's size at the fork,
    # which would hide a small tool's true footprint.
    os.sync()
    report = work / "time.out"
    timer = ["/usr/bin/time", "-f", "%M %U %S", "-o", str(report)] if HAVE_GNU_TIME else []
    start = time.perf_counter()
    child = subprocess.Popen([*timer, *argv], stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{argv[0]} failed with exit code {code}")
    if HAVE_GNU_TIME:
        peak_kib, user, system = report.read_text().split()[-3:]
        return wall, float(user) + float(system), int(peak_kib) * 1024
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024  # Linux: KiB


def same_bytes(source: Path, parts: list[Path]) -> bool:
    with source.open("rb") as whole:
        for part in parts:
            with part.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    if whole.read(len(chunk)) != chunk:
                        return False
        return whole.read(1) == b""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1GB", help="input size to generate (default 1GB)")
    parser.add_argument("--max-size", default="500MB", help="shard limit (default 500MB)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each tool (default 3)")
    parser.add_argument("--dir", default=None, help="where to put the files (default: temp dir)")
    args = parser.parse_args()
    size, limit = parse_size(args.size), parse_size(args.max_size)
    gnu_split = shutil.which("split")
    if gnu_split is None:
        print("GNU split not found: no baseline to compare with", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="ftprep-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        source = work / "bench.jsonl"
        t0 = time.perf_counter()
        lines = generate(source, size)
        actual = source.stat().st_size
        print(
            f"input: {format_size(actual)}, {lines} lines, generated in "
            f"{time.perf_counter() - t0:.1f} s; limit {format_size(limit)}"
        )
        ftprep_cmd = [sys.executable, "-m", "ftprep", "split", str(source)]
        ftprep_cmd += ["--max-size", str(limit), "--out-dir", str(work / "ftprep"), "--force", "-q"]
        # JSON output shows each shard's sha256, so that run hashes everything it writes.
        json_cmd = [*ftprep_cmd[:-1], "-o", "json"]
        # The same call without the CLI's start-up (importing every command's modules).
        library_cmd = [
            sys.executable,
            "-c",
            "import sys, ftprep; ftprep.split(sys.argv[1], max_size=int(sys.argv[2]), "
            "out_dir=sys.argv[3], force=True)",
            str(source),
            str(limit),
            str(work / "ftprep"),
        ]
        split_cmd = [gnu_split, "-C", str(limit), str(source), str(work / "gnu" / "x")]
        (work / "gnu").mkdir()
        # Warm the page cache so that neither tool pays for reading the disk.
        same_bytes(source, [])
        tools = {
            "split -C": split_cmd,
            "ftprep split": ftprep_cmd,
            "split -o json": json_cmd,
            "ftprep.split()": library_cmd,
        }
        times: dict[str, list[float]] = {name: [] for name in tools}
        cpu: dict[str, list[float]] = {name: [] for name in tools}
        rss: dict[str, list[int]] = {name: [] for name in tools}
        for i in range(args.runs):
            order = list(tools.items())
            for name, argv in order if i % 2 == 0 else order[::-1]:
                if name == "split -C":
                    shutil.rmtree(work / "gnu")
                    (work / "gnu").mkdir()
                else:
                    shutil.rmtree(work / "ftprep", ignore_errors=True)
                wall, used, peak = run(argv, work)
                times[name].append(wall)
                cpu[name].append(used)
                rss[name].append(peak)
                print(
                    f"  run {i + 1} {name:<15} {wall:6.2f} s wall  {used:6.2f} s CPU"
                    f"  peak RSS {peak / 2**20:6.1f} MB"
                )

        shards = sorted((work / "ftprep").glob("*.part-*.jsonl"))
        print(
            f"ftprep wrote {len(shards)} shards: {[format_size(p.stat().st_size) for p in shards]}"
        )
        if not same_bytes(source, shards):
            print("ERROR: the shards do not join back into the input")
            return 1

    base = statistics.median(times["split -C"])
    base_cpu = statistics.median(cpu["split -C"])
    print()
    print(
        f"split -C        {base:.2f} s wall, {base_cpu:.2f} s CPU;"
        f" peak RSS {max(rss['split -C']) / 2**20:.1f} MB"
    )
    for name in ("ftprep split", "split -o json", "ftprep.split()"):
        ours = statistics.median(times[name])
        ratio = ours / base
        best = min(times[name]) / min(times["split -C"])
        peak = max(rss[name])
        wall_ok = "met" if ratio <= WALL_RATIO_TARGET else "MISSED"
        rss_ok = "met" if peak < RSS_TARGET else "MISSED"
        cpu_ratio = statistics.median(cpu[name]) / base_cpu
        print(
            f"{name:<15} {ours:.2f} s wall, ratio to split -C {ratio:.2f} (median)"
            f" {best:.2f} (best); CPU ratio {cpu_ratio:.2f}; peak RSS {peak / 2**20:.1f} MB"
        )
        print(f"{'':<15} wall <= {WALL_RATIO_TARGET}x: {wall_ok}; peak RSS < 64 MB: {rss_ok}")
    print("(shared machine: figures are noisy; rerun before drawing conclusions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
