"""How fast the record fast path is, against `orjson.loads` on the same lines.

Builds realistic chat records of 1-4 KB (a system prompt, one to four user and
assistant turns, mixed ASCII and non-ASCII text, some weights), then times, in
the same process and interleaved round by round:

    orjson.loads(line)                  the baseline: a parse and nothing else
    get_checker("chat").quick_ok(line)  msgspec typed decode + the cheap rules
    get_checker("chat").check(record)   the slow path (schema shape or jsonschema, + rules)

It prints MB/s for each and the ratios against the baseline; the target is a fast
path at least 0.8x orjson. The machine is shared, so compare ratios, not MB/s.

    python benchmarks/quick_ok.py
    python benchmarks/quick_ok.py --records 20000 --rounds 7
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import orjson

from ftprep.formats import get_checker

TARGET = 0.8
WORDS = (
    "chain tyre brake wheel pressure gear cassette derailleur spoke rim saddle frame "
    "torque sealant tubeless pedal crank bearing headset fork "
    "vélo dérailleur chaîne Fahrrad Schaltwerk 自転車 ブレーキ"
).split()


def make_records(n: int, seed: int = 11) -> list[bytes]:
    rng = random.Random(seed)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    lines = []
    while len(lines) < n:
        messages = [{"role": "system", "content": text(10, 40)}]
        for turn in range(rng.randint(1, 4)):
            messages.append({"role": "user", "content": text(15, 90)})
            answer = {"role": "assistant", "content": text(30, 200)}
            if rng.random() < 0.2:
                answer["weight"] = 0 if turn == 0 else 1
            messages.append(answer)
        line = orjson.dumps({"messages": messages})
        if 1000 <= len(line) <= 4000:
            lines.append(line)
    return lines


def time_once(fn: Callable[[bytes], object], lines: list[bytes]) -> float:
    start = time.perf_counter()
    for line in lines:
        fn(line)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    lines = make_records(args.records)
    size = sum(len(line) for line in lines)
    checker = get_checker("chat")
    accepted = sum(checker.quick_ok(line) for line in lines)
    parsed = [orjson.loads(line) for line in lines]
    slow_sample = parsed[: max(1, len(parsed) // 10)]
    slow_size = sum(len(line) for line in lines[: len(slow_sample)])

    runs: dict[str, list[float]] = {"orjson.loads": [], "quick_ok": [], "check": []}
    for _ in range(args.rounds):
        runs["orjson.loads"].append(size / time_once(orjson.loads, lines))
        runs["quick_ok"].append(size / time_once(checker.quick_ok, lines))
        t = time.perf_counter()
        for record in slow_sample:
            checker.check(record)
        runs["check"].append(slow_size / (time.perf_counter() - t))

    base = statistics.median(runs["orjson.loads"])
    print(
        f"{len(lines)} chat records, {size / 1e6:.1f} MB, "
        f"mean {size / len(lines):.0f} B/record; quick_ok accepted {accepted}/{len(lines)}"
    )
    for name, speeds in runs.items():
        mbs = statistics.median(speeds) / 1e6
        print(f"{name:>14}: {mbs:8.1f} MB/s   {statistics.median(speeds) / base:6.2f}x orjson")
    ratio = statistics.median(runs["quick_ok"]) / base
    verdict = "holds" if ratio >= TARGET else "MISSED"
    print(f"target quick_ok >= {TARGET}x orjson.loads: {verdict} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
