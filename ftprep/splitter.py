"""Shard a JSONL file into balanced, byte-exact pieces under the upload limit.

Splitting is a byte job: records are never parsed. Cut points are found by looking
for ``\\n`` near the ideal offsets, the bytes between cuts are copied by the kernel
(``copy_file_range``), and each shard's sha256 and line count are computed from a
second, read-only pass over the same range that runs alongside the copy.

>>> result = split("big.jsonl", max_size="500MB", out_dir="shards")  # doctest: +SKIP
>>> [s.path.name for s in result.shards]                             # doctest: +SKIP
['big.part-0001-of-0003.jsonl', 'big.part-0002-of-0003.jsonl', 'big.part-0003-of-0003.jsonl']

Guarantees (see ``docs/split.md``):

* the fewest shards that fit the limit, each ending on a line boundary;
* balance: with ``L`` the longest line (newline included), every two shards differ
  in size by at most ``2 * L``;
* without ``shuffle`` the shards, followed by the validation file if any, concatenate
  to the input byte for byte;
* all or nothing: outputs are written under hidden temporary names and renamed into
  place only when every one of them is complete and synced.
"""

from __future__ import annotations

import array
import bisect
import contextlib
import errno
import hashlib
import itertools
import operator
import os
import queue
import random
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import InputError, OutputError, SplitError, UsageError
from .progress import ProgressCallback
from .sizes import DEFAULT_MAX_SIZE, DEFAULT_VALIDATION_SIZE, format_size, parse_size

__all__ = ["Shard", "SplitResult", "split"]

#: Bytes read per step when hashing and counting lines; fits the L2 cache of most CPUs.
_READ_CHUNK = 1 << 20
#: Bytes handed to the kernel per copy call; small enough to stop quickly on Ctrl-C.
_COPY_CHUNK = 16 << 20
#: Below this, one thread does everything: starting helpers costs more than it saves.
_PARALLEL_MIN = 8 << 20
#: Read buffers in flight between the reading and the hashing thread.
_BUFFERS = 8
#: Temporary outputs are named ``.{final name}{_TMP_MARK}{pid}-{random}``.
_TMP_MARK = ".tmp-"
#: Longest stem kept from the input's name, in UTF-8 bytes (file names stop at 255).
_MAX_STEM_BYTES = 100
#: Errors that mean "this way of copying is not available here", not "the copy failed".
_UNSUPPORTED = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF}
)


@dataclass(frozen=True)
class Shard:
    """One output file: where it is, its size, its line count and its sha256.

    ``sha256`` is ``None`` when :func:`split` was asked not to compute checksums.
    """

    path: Path
    bytes: int
    lines: int
    sha256: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "bytes": self.bytes,
            "lines": self.lines,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class SplitResult:
    """What :func:`split` wrote.

    ``shards`` are in order; ``validation`` is the carved validation file, if one was
    asked for. ``seed`` is the seed the shuffle used (drawn at random when none was
    given, so that a run can be repeated). ``warnings`` are things the caller should
    tell the user; the files were written all the same.
    """

    shards: list[Shard]
    validation: Shard | None = None
    seed: int | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shards": [s.to_dict() for s in self.shards],
            "validation": self.validation.to_dict() if self.validation else None,
        }


def split(
    path: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str],
    max_size: int | str = DEFAULT_MAX_SIZE,
    validation_size: int | float | str | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    force: bool = False,
    checksums: bool = True,
    progress: ProgressCallback | None = None,
) -> SplitResult:
    """Split ``path`` into the fewest balanced shards of at most ``max_size`` bytes.

    Shards are named ``{stem}.part-0001-of-0004.jsonl`` inside ``out_dir`` (created if
    missing). A file already under the limit gives one shard, ``...part-0001-of-0001``.

    ``validation_size`` carves whole records into ``{stem}.validation.jsonl``: bytes
    (``1000000``, ``"1MB"``) or a fraction of the file (``0.05``, ``"5%"``, capped at
    1 MB, Mistral's limit for validation files). Without ``shuffle`` the records at the
    end of the file are taken; with it, the first ones of the shuffled order.

    ``shuffle`` writes the lines in an order drawn from ``random.Random(seed)``; the
    same seed gives the same bytes. Every record then ends with a newline (a last line
    without one gets one).

    ``checksums=False`` skips the SHA-256 of each output (``Shard.sha256`` is then
    ``None``): hashing is most of a split's CPU time, so a caller that hashes the
    shards itself, or does not need the digests, saves it.

    ``progress`` is called with the number of bytes just processed: once per byte of
    the input when copying, and once more while indexing the lines when shuffling.

    Raises :class:`~ftprep.errors.SplitError` when a record is larger than the limit,
    :class:`~ftprep.errors.OutputError` when an output exists (unless ``force``), and
    :class:`~ftprep.errors.InputError` when ``path`` cannot be read. Nothing is left
    under a final name when it raises.

    >>> r = split("big.jsonl", max_size="200MB", out_dir="shards",
    ...           validation_size="5%", shuffle=True, seed=7)      # doctest: +SKIP
    >>> r.validation.path.name                                    # doctest: +SKIP
    'big.validation.jsonl'
    """
    limit = parse_size(max_size)
    if seed is not None and not shuffle:
        raise UsageError("a seed only applies when shuffling (--shuffle)")
    display = os.fspath(path)
    with _open_input(display) as (fd, info):
        size = info.st_size
        if size == 0:
            raise SplitError(f"{display}: the file is empty; there is nothing to split")
        budget, warnings = _validation_budget(validation_size, size, limit)
        if shuffle and seed is None:
            seed = random.SystemRandom().randrange(2**32)
        try:
            if shuffle:
                assert seed is not None
                plan = _plan_shuffled(fd, display, size, limit, budget, seed, progress)
            else:
                plan = _plan_in_order(fd, display, size, limit, budget)
        except OSError as e:
            raise InputError(f"{display}: reading failed ({e.strerror or e})", path=display) from e
        result = _write_outputs(
            fd,
            display,
            plan,
            Path(out_dir),
            force,
            checksums,
            progress,
            lambda: _check_unchanged(fd, display, info),
        )
    return SplitResult(
        shards=result.shards,
        validation=result.validation,
        seed=seed if shuffle else None,
        warnings=warnings + result.warnings,
    )


# --------------------------------------------------------------------------- input


@contextlib.contextmanager
def _open_input(display: str) -> Iterator[tuple[int, os.stat_result]]:
    # O_NONBLOCK: opening a FIFO must not hang waiting for a writer.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(display, flags)
    except FileNotFoundError:
        raise InputError(f"{display}: no such file", path=display) from None
    except IsADirectoryError:
        raise InputError(f"{display}: is a directory, not a file", path=display) from None
    except PermissionError:
        raise InputError(f"{display}: permission denied", path=display) from None
    except OSError as e:
        raise InputError(f"{display}: cannot be read ({e.strerror})", path=display) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{display}: is a directory, not a file", path=display)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(
                f"{display}: is not a regular file (a pipe or device cannot be split; "
                "save it to a file first)",
                path=display,
            )
        yield fd, info
    finally:
        os.close(fd)


def _check_unchanged(fd: int, display: str, before: os.stat_result) -> None:
    after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise InputError(
            f"{display}: the file changed while it was being split; run again once "
            "nothing writes to it",
            path=display,
        )


def _validation_budget(
    value: int | float | str | None, size: int, limit: int
) -> tuple[int | None, list[str]]:
    """Bytes allowed for the validation file, and any warning about the choice."""
    if value is None:
        return None, []
    fraction: float | None = None
    explicit: int | None = None
    if isinstance(value, bool):
        raise UsageError(f"invalid validation size {value!r}: give bytes or a fraction")
    if isinstance(value, float):
        fraction = value
    elif isinstance(value, int):
        explicit = parse_size(value)
    else:
        text = value.strip()
        try:
            if text.endswith("%"):
                fraction = float(text[:-1]) / 100
            elif re.fullmatch(r"0?\.\d+|0\.\d*", text):
                fraction = float(text)
        except ValueError:
            raise UsageError(
                f"invalid validation size {value!r}: use a size such as 1MB, "
                "or a fraction such as 0.05 or 5%"
            ) from None
        if fraction is None:
            explicit = parse_size(text)
    warnings: list[str] = []
    if fraction is not None:
        if not 0 < fraction < 1:
            raise UsageError(
                f"invalid validation fraction {value!r}: it must be above 0 and below 1 "
                "(e.g. 0.05 or 5%)"
            )
        budget = min(int(size * fraction), DEFAULT_VALIDATION_SIZE)
    else:
        assert explicit is not None
        budget = explicit
        if explicit > DEFAULT_VALIDATION_SIZE:
            warnings.append(
                f"validation size {format_size(explicit)} is above Mistral's "
                f"{format_size(DEFAULT_VALIDATION_SIZE)} limit for validation files; "
                "the API may refuse the validation file"
            )
    if budget > limit:
        warnings.append(
            f"validation size lowered to the shard limit {format_size(limit)}: "
            "the validation file must be uploadable too"
        )
        budget = limit
    return budget, warnings


def _count_newlines(fd: int, stop: int) -> int:
    count = 0
    pos = 0
    while pos < stop:
        chunk = os.pread(fd, min(_READ_CHUNK, stop - pos), pos)
        if not chunk:
            break
        count += chunk.count(b"\n")
        pos += len(chunk)
    return count


# ------------------------------------------------------------------------ planning


class _Boundaries(Protocol):
    """Line boundaries of a byte stream ``[0, end]``: 0, ``end`` and every byte after a newline."""

    end: int

    def at_or_before(self, x: int) -> int: ...

    def at_or_after(self, x: int) -> int: ...


class _FileBoundaries:
    """Boundaries found by reading small windows of the file around the asked offset.

    Each look-up reads at most one line's worth of bytes, so planning costs a few
    reads even for a huge file. ``pread`` rather than ``mmap``: a file truncated
    underneath us gives short reads here, not a SIGBUS.
    """

    _WINDOW = 64 << 10

    def __init__(self, fd: int, end: int) -> None:
        self.fd = fd
        self.end = end

    def at_or_before(self, x: int) -> int:
        if x >= self.end:
            return self.end
        hi = x  # look for a newline at index < hi
        while hi > 0:
            lo = max(0, hi - self._WINDOW)
            chunk = os.pread(self.fd, hi - lo, lo)
            i = chunk.rfind(b"\n")
            if i >= 0:
                return lo + i + 1
            hi = lo
        return 0

    def at_or_after(self, x: int) -> int:
        if x <= 0:
            return 0
        lo = x - 1  # look for a newline at index >= x - 1
        while lo < self.end:
            chunk = os.pread(self.fd, min(self._WINDOW, self.end - lo), lo)
            if not chunk:
                break
            i = chunk.find(b"\n")
            if i >= 0:
                return lo + i + 1
            lo += len(chunk)
        return self.end


class _PrefixBoundaries:
    """Boundaries of a virtual stream given by the running sum of its line lengths."""

    def __init__(self, prefix: Sequence[int]) -> None:
        self.prefix = prefix
        self.end = prefix[-1]

    def at_or_before(self, x: int) -> int:
        return self.prefix[bisect.bisect_right(self.prefix, x) - 1]

    def at_or_after(self, x: int) -> int:
        return self.prefix[min(bisect.bisect_left(self.prefix, x), len(self.prefix) - 1)]


class _LineTooLong(Exception):
    def __init__(self, start: int) -> None:
        self.start = start


def _plan_cuts(b: _Boundaries, limit: int) -> list[int]:
    """Cut offsets ``[0, c1, ..., end]`` of the fewest, most even shards of at most ``limit``.

    The shard count ``k`` is the greedy minimum. Each cut is the boundary nearest the
    ideal ``i * end / k``, kept inside the window where the shards so far stay under
    the limit and the rest still fits in the shards that remain. Balance bound
    (``L`` = longest line): when ``end / k + L <= limit`` the window never binds, every
    cut is within ``L / 2`` of its ideal and each shard is within ``L`` of
    ``end / k``; otherwise a shard that the window moves is still at least
    ``min(end / k - L, limit - L)`` long. Either way max - min <= 2 * L.

    Raises :class:`_LineTooLong` with the start of the first line over the limit.
    """
    end = b.end
    # Greedy from the front: the fewest shards, and the first line that cannot fit.
    k = 1
    c = 0
    while end - c > limit:
        g = b.at_or_before(c + limit)
        if g <= c:
            raise _LineTooLong(c)
        c = g
        k += 1
    # Greedy from the back: lo[i] is the earliest cut i that leaves a tail that still
    # fits in the k - i shards after it.
    lo = [0] * (k + 1)
    lo[k] = end
    for i in range(k - 1, 0, -1):
        lo[i] = b.at_or_after(lo[i + 1] - limit)
    cuts = [0]
    for i in range(1, k):
        hi = cuts[-1] + limit
        ideal_k = i * end  # the ideal cut is ideal_k / k; kept scaled to stay exact
        if ideal_k <= lo[i] * k:
            cut = lo[i]
        elif ideal_k >= hi * k:
            cut = b.at_or_before(hi)
        else:
            below = b.at_or_before(ideal_k // k)
            above = b.at_or_after(-(-ideal_k // k))
            if above > hi or ideal_k - below * k <= above * k - ideal_k:
                cut = below
            else:
                cut = above
        cuts.append(cut)
    cuts.append(end)
    return cuts


@dataclass
class _Output:
    """One file to write: its name and where its bytes come from."""

    name: str
    # A byte range of the input, or (shuffle) a list of line numbers, 0-based.
    start: int = 0
    stop: int = 0
    order: Sequence[int] | None = None


@dataclass
class _Plan:
    stem: str
    shards: list[_Output]
    validation: _Output | None
    # Shuffle only: line start offsets (plus the end), and the unterminated last line.
    offsets: Sequence[int] = ()
    open_last: int | None = None


def _shard_names(stem: str, k: int) -> list[str]:
    width = max(4, len(str(k)))
    return [f"{stem}.part-{i:0{width}d}-of-{k:0{width}d}.jsonl" for i in range(1, k + 1)]


def _bytes_text(n: int) -> str:
    return f"{n} bytes" if n < 1000 else f"{format_size(n)} ({n} bytes)"


def _too_long(
    fd: int, display: str, start: int, length: int, limit: int, *, line: int | None = None
) -> SplitError:
    if line is None:
        line = _count_newlines(fd, start) + 1
    return SplitError(
        f"{display}:{line}: record is {_bytes_text(length)}, larger than the shard limit "
        f"{_bytes_text(limit)}; it cannot go in any shard. Shorten or drop that record, "
        "or raise --max-size",
        path=display,
        line=line,
    )


def _plan_in_order(fd: int, display: str, size: int, limit: int, budget: int | None) -> _Plan:
    whole = _FileBoundaries(fd, size)
    try:
        cuts = _plan_cuts(whole, limit)
    except _LineTooLong as e:
        length = whole.at_or_after(e.start + 1) - e.start
        raise _too_long(fd, display, e.start, length, limit) from None
    stem = safe_stem(display)
    validation = None
    if budget is not None:
        # The validation file is the tail: the last whole records that fit the budget.
        v = whole.at_or_after(size - budget)
        if v >= size:
            last = whole.at_or_before(size - 1)
            raise SplitError(
                f"{display}:{_count_newlines(fd, last) + 1}: the last record "
                f"({size - last} bytes) is larger than the validation size ({budget} "
                "bytes); no whole record fits. Raise --validation-size",
                path=display,
            )
        if v <= 0:
            raise SplitError(
                f"{display}: the validation size ({budget} bytes) would take every "
                "record and leave none to train on; lower --validation-size",
                path=display,
            )
        validation = _Output(f"{stem}.validation.jsonl", v, size)
        cuts = _plan_cuts(_FileBoundaries(fd, v), limit)
    names = _shard_names(stem, len(cuts) - 1)
    shards = [_Output(n, a, b) for n, a, b in zip(names, cuts[:-1], cuts[1:], strict=True)]
    return _Plan(stem, shards, validation)


def _index_lines(
    fd: int, display: str, size: int, progress: ProgressCallback | None
) -> tuple[array.array[int], int | None]:
    """Offsets where each line starts, plus ``size``; and the last line if it has no newline."""
    offsets = array.array("q", [0])
    append = offsets.append
    pos = 0
    while pos < size:
        chunk = os.pread(fd, min(_READ_CHUNK, size - pos), pos)
        if not chunk:
            raise InputError(f"{display}: the file shrank while it was being read", path=display)
        find = chunk.find
        i = find(b"\n")
        while i >= 0:
            append(pos + i + 1)
            i = find(b"\n", i + 1)
        pos += len(chunk)
        if progress is not None:
            progress(len(chunk))
    open_last = None
    if offsets[-1] != size:
        open_last = len(offsets) - 1
        append(size)
    return offsets, open_last


def _plan_shuffled(
    fd: int,
    display: str,
    size: int,
    limit: int,
    budget: int | None,
    seed: int,
    progress: ProgressCallback | None,
) -> _Plan:
    offsets, open_last = _index_lines(fd, display, size, progress)
    n = len(offsets) - 1
    # Line lengths, computed by C loops: a Python loop per line would dominate.
    lengths = array.array("q", map(operator.sub, itertools.islice(offsets, 1, None), offsets))
    if open_last is not None:
        lengths[open_last] += 1  # it gets a newline: it may land in the middle
    if max(lengths) > limit:
        first = next(i for i, n_bytes in enumerate(lengths) if n_bytes > limit)
        raise _too_long(fd, display, offsets[first], lengths[first], limit, line=first + 1)
    order = array.array("I" if n < 2**32 else "Q", range(n))
    random.Random(seed).shuffle(order)
    stem = safe_stem(display)
    taken = 0
    validation = None
    if budget is not None:
        used = 0
        while taken < n and used + lengths[order[taken]] <= budget:
            used += lengths[order[taken]]
            taken += 1
        if taken == 0:
            first = order[0]
            raise SplitError(
                f"{display}:{first + 1}: the first record of the shuffled order "
                f"({lengths[first]} bytes) is larger than the validation size ({budget} "
                "bytes); raise --validation-size or pick another --seed",
                path=display,
                line=first + 1,
            )
        if taken == n:
            raise SplitError(
                f"{display}: the validation size ({budget} bytes) would take every record "
                "and leave none to train on; lower --validation-size",
                path=display,
            )
        validation = _Output(f"{stem}.validation.jsonl", order=order[:taken])
    rest = order[taken:]
    prefix = array.array("q", itertools.accumulate(map(lengths.__getitem__, rest), initial=0))
    del lengths
    cuts = _plan_cuts(_PrefixBoundaries(prefix), limit)
    names = _shard_names(stem, len(cuts) - 1)
    shards = []
    for name, a, b in zip(names, cuts[:-1], cuts[1:], strict=True):
        first = bisect.bisect_left(prefix, a)
        last = bisect.bisect_left(prefix, b)
        shards.append(_Output(name, order=rest[first:last]))
    return _Plan(stem, shards, validation, offsets, open_last)


# -------------------------------------------------------------------------- naming

_UNSAFE_RUN = re.compile(r"[^\w.\-]+")


def safe_stem(path: str | os.PathLike[str]) -> str:
    """The part of an input's name that output names are built from.

    Only the last path component is used (``/`` and ``\\`` both count as separators),
    a ``.jsonl`` or other last suffix is dropped, runs of characters other than
    letters, digits, ``_``, ``.`` and ``-`` become ``_``, and leading dots and dashes
    go, so the result is never hidden, never an option, never ``..``.

    >>> safe_stem("../../data/train set.jsonl")
    'train_set'
    >>> safe_stem("..\\\\..\\\\evil.jsonl")
    'evil'
    >>> safe_stem(".jsonl")
    'data'
    """
    name = re.split(r"[\\/]", os.fspath(path))[-1]
    if name.lower().endswith(".jsonl"):
        name = name[: -len(".jsonl")]
    else:
        base, dot, _suffix = name.rpartition(".")
        if dot and base.strip("."):
            name = base
    stem = _UNSAFE_RUN.sub("_", name).lstrip(".-_").rstrip(".")
    stem = stem.encode("utf-8")[:_MAX_STEM_BYTES].decode("utf-8", "ignore").rstrip(".")
    return stem or "data"


# ------------------------------------------------------------------------- writing


@dataclass
class _Written:
    shards: list[Shard]
    validation: Shard | None
    warnings: list[str]


def _file_mode() -> int:
    """0o666 minus the umask: shards get the permissions any new file would."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _prepare_out_dir(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{out_dir}: exists and is not a directory") from None
    except OSError as e:
        raise OutputError(f"{out_dir}: cannot create the output directory ({e.strerror})") from None
    if not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a directory")
    return out_dir.resolve()


def _check_targets(out_dir: Path, real_dir: Path, names: list[str], force: bool) -> None:
    """Refuse, before writing anything, outputs that exist (unless ``force``) or escape."""
    clashes: list[str] = []
    for name in names:
        target = real_dir / name
        if target.parent != real_dir or name in (".", "..") or "/" in name or "\0" in name:
            raise OutputError(f"{name!r}: output name would land outside {out_dir}")
        try:
            info = os.lstat(target)
        except FileNotFoundError:
            continue
        shown = out_dir / name
        if stat.S_ISLNK(info.st_mode):
            if not force:
                raise OutputError(
                    f"{shown}: is a symlink; refusing to write through it "
                    "(--force replaces the link itself, never its target)"
                )
        elif not stat.S_ISREG(info.st_mode):
            raise OutputError(f"{shown}: exists and is not a regular file; move it away")
        elif not force:
            clashes.append(str(shown))
    if clashes:
        what = (
            f"{clashes[0]} already exists"
            if len(clashes) == 1
            else (f"{clashes[0]} and {len(clashes) - 1} more outputs already exist")
        )
        raise OutputError(f"{what}; pass --force to replace, or pick another --out-dir")


def _clean_stale_temps(real_dir: Path, names: list[str]) -> None:
    """Remove temporaries that a killed run left for these very names.

    A temp records the pid that made it; it is removed only when that process is
    gone, so a run still writing the same names is left alone.
    """
    wanted = set(names)
    try:
        entries = list(os.scandir(real_dir))
    except OSError:
        return
    for entry in entries:
        base, mark, tail = entry.name.rpartition(_TMP_MARK)
        if not mark or not base.startswith(".") or base[1:] not in wanted:
            continue
        pid_text = tail.split("-", 1)[0]
        if not pid_text.isdigit() or _process_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _earlier_shards(real_dir: Path, out_dir: Path, stem: str, names: list[str]) -> list[str]:
    pattern = re.compile(re.escape(stem) + r"\.part-\d+-of-\d+\.jsonl")
    keep = set(names)
    try:
        found = [e.name for e in os.scandir(real_dir)]
    except OSError:
        return []
    return sorted(str(out_dir / n) for n in found if pattern.fullmatch(n) and n not in keep)


class _Staging:
    """Temporary files next to their final names, renamed into place all at once."""

    def __init__(self, real_dir: Path) -> None:
        self.dir = real_dir
        self.mode = _file_mode()
        self.temps: list[tuple[str, Path]] = []  # (temp path, final path)
        self.renamed: list[Path] = []

    def create(self, name: str) -> int:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{name}{_TMP_MARK}{os.getpid()}-")
        self.temps.append((tmp, self.dir / name))
        try:
            os.fchmod(fd, self.mode)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def commit(self) -> None:
        for tmp, final in self.temps:
            os.replace(tmp, final)
            self.renamed.append(final)
        self.temps = []
        _fsync_dir(self.dir)

    def discard(self) -> None:
        # After a partial commit the renamed files are complete, but the set is not:
        # remove them too, so that a failed run leaves no outputs at all.
        for final in self.renamed:
            with contextlib.suppress(OSError):
                os.unlink(final)
        for tmp, _final in self.temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.temps = []
        self.renamed = []


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # not every platform can open a directory; the files themselves are synced
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _sync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_outputs(
    fd: int,
    display: str,
    plan: _Plan,
    out_dir: Path,
    force: bool,
    checksums: bool,
    progress: ProgressCallback | None,
    before_commit: Callable[[], None],
) -> _Written:
    real_dir = _prepare_out_dir(out_dir)
    outputs = [*plan.shards, *([plan.validation] if plan.validation else [])]
    names = [o.name for o in outputs]
    _check_targets(out_dir, real_dir, names, force)
    _clean_stale_temps(real_dir, names)
    staging = _Staging(real_dir)
    cancel = threading.Event()
    # Two helpers copy and hash the current output; a third syncs the finished ones
    # meanwhile, so that a slow fsync never holds up the next copy.
    helpers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ftprep-split")
    syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ftprep-sync")
    syncs: list[tuple[Future[None], int]] = []
    written: list[Shard] = []
    current = names[0]
    try:
        for out in outputs:
            current = out.name
            dst = staging.create(out.name)
            try:
                if out.order is None:
                    lines, digest = _copy_range(
                        fd, dst, out.start, out.stop, checksums, progress, helpers, cancel
                    )
                    nbytes = out.stop - out.start
                else:
                    nbytes, lines, digest = _write_lines(
                        fd, dst, out.order, plan, checksums, progress
                    )
            except BaseException:
                os.close(dst)
                raise
            syncs.append((syncer.submit(_sync_and_close, dst), dst))
            written.append(Shard(out_dir / out.name, nbytes, lines, digest))
        for f, _dst in syncs:
            f.result()
        before_commit()
        staging.commit()
    except BaseException as e:
        cancel.set()
        helpers.shutdown(wait=True, cancel_futures=True)
        syncer.shutdown(wait=True, cancel_futures=True)
        for f, dst in syncs:
            if f.cancelled():
                os.close(dst)
        staging.discard()
        if isinstance(e, InputError) and e.path is None:
            raise InputError(f"{display}: {e}", path=display) from None
        if isinstance(e, OSError):
            # A full disk or a failing device is not a bug: say which file and why.
            raise OutputError(
                f"{out_dir / current}: writing failed ({e.strerror or e}); nothing was "
                f"written to {out_dir}"
            ) from e
        raise
    helpers.shutdown(wait=True)
    syncer.shutdown(wait=True)
    warnings = []
    earlier = _earlier_shards(real_dir, out_dir, plan.stem, names)
    if earlier:
        warnings.append(
            f"{out_dir} also holds {len(earlier)} shard(s) of {plan.stem} from an earlier "
            f"split (e.g. {earlier[0]}); remove them before uploading the directory"
        )
    validation = written.pop() if plan.validation else None
    return _Written(written, validation, warnings)


# ------------------------------------------------------------------------- copying


class _Cancelled(Exception):
    pass


def _copy_bytes(
    src: int, dst: int, start: int, stop: int, cancel: threading.Event | None = None
) -> None:
    """Append ``src[start:stop]`` to ``dst``, in the kernel where it can.

    Tries ``copy_file_range``, then ``sendfile``, then plain reads and writes, moving
    to the next only when the current one is not supported for these files.
    """
    pos = start
    movers: list[Callable[[int, int, int, int], int]] = []
    if hasattr(os, "copy_file_range"):
        movers.append(_move_copy_file_range)
    if hasattr(os, "sendfile"):
        movers.append(_move_sendfile)
    movers.append(_move_read_write)
    for mover in movers:
        try:
            while pos < stop:
                if cancel is not None and cancel.is_set():
                    raise _Cancelled
                n = mover(src, dst, pos, min(_COPY_CHUNK, stop - pos))
                if n == 0:
                    raise InputError("the input file shrank while it was being split")
                _start_writeback(dst, pos - start, n)
                pos += n
            return
        except OSError as e:
            if e.errno not in _UNSUPPORTED or mover is _move_read_write:
                raise


def _move_copy_file_range(src: int, dst: int, pos: int, count: int) -> int:
    return os.copy_file_range(src, dst, count, pos)


def _move_sendfile(src: int, dst: int, pos: int, count: int) -> int:
    return os.sendfile(dst, src, pos, count)


def _move_read_write(src: int, dst: int, pos: int, count: int) -> int:
    data = os.pread(src, min(count, _READ_CHUNK), pos)
    _write_all(dst, data)
    return len(data)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _start_writeback(fd: int, offset: int, length: int) -> None:
    # Asking the kernel to drop pages it cannot drop yet (they are dirty) makes it start
    # writing them out now; the fsync at the end then has little left to wait for.
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


class _NoDigest:
    """Stands in for a hash object when no checksum was asked for."""

    def update(self, data: Any) -> None:
        pass

    def hexdigest(self) -> None:
        return None


def _new_digest(checksums: bool) -> Any:
    return hashlib.sha256() if checksums else _NoDigest()


def _copy_range(
    src: int,
    dst: int,
    start: int,
    stop: int,
    checksums: bool,
    progress: ProgressCallback | None,
    pool: ThreadPoolExecutor,
    cancel: threading.Event,
) -> tuple[int, str | None]:
    """Copy ``src[start:stop]`` to ``dst``; return its line count and sha256.

    The kernel copies the bytes (one helper thread) while this thread reads the same
    range to count newlines and a second helper hashes what was read: counting holds
    the GIL, hashing and copying do not, so the three overlap.
    """
    digest = _new_digest(checksums)
    newlines = 0
    last = b"\n"
    if stop - start < _PARALLEL_MIN:
        pos = start
        while pos < stop:
            chunk = os.pread(src, min(_READ_CHUNK, stop - pos), pos)
            if not chunk:
                raise InputError("the input file shrank while it was being split")
            digest.update(chunk)
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
            pos += len(chunk)
        _copy_bytes(src, dst, start, stop, cancel)
        if progress is not None:
            progress(stop - start)
        return newlines + (last != b"\n"), digest.hexdigest()

    copying = pool.submit(_copy_bytes, src, dst, start, stop, cancel)
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    for _ in range(_BUFFERS):
        free.put(bytearray(_READ_CHUNK))
    filled: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()

    def hash_filled() -> None:
        while (item := filled.get()) is not None:
            buf, n = item
            digest.update(memoryview(buf)[:n])
            free.put(buf)

    hashing = pool.submit(hash_filled)
    try:
        pos = start
        while pos < stop:
            if copying.done() and copying.exception() is not None:
                break  # the copy failed: stop reading and report its error below
            buf = free.get()
            n = os.preadv(src, [memoryview(buf)[: min(_READ_CHUNK, stop - pos)]], pos)
            if n == 0:
                raise InputError("the input file shrank while it was being split")
            newlines += buf.count(b"\n", 0, n)
            last = bytes(buf[n - 1 : n])
            filled.put((buf, n))
            pos += n
            if progress is not None:
                progress(n)
    finally:
        filled.put(None)
    hashing.result()
    copying.result()
    return newlines + (last != b"\n"), digest.hexdigest()


def _write_lines(
    src: int,
    dst: int,
    order: Sequence[int],
    plan: _Plan,
    checksums: bool,
    progress: ProgressCallback | None,
) -> tuple[int, int, str | None]:
    """Write the lines numbered in ``order``; return bytes, lines and sha256 written."""
    offsets = plan.offsets
    digest = _new_digest(checksums)
    out = bytearray()
    total = 0
    for i in order:
        start, stop = offsets[i], offsets[i + 1]
        data = os.pread(src, stop - start, start)
        if len(data) != stop - start:
            raise InputError("the input file shrank while it was being split")
        out += data
        if i == plan.open_last:
            out += b"\n"
        if len(out) >= _READ_CHUNK:
            total += _flush(dst, out, digest, progress)
    total += _flush(dst, out, digest, progress)
    return total, len(order), digest.hexdigest()


def _flush(dst: int, out: bytearray, digest: Any, progress: ProgressCallback | None) -> int:
    n = len(out)
    digest.update(out)
    _write_all(dst, out)
    out.clear()
    if progress is not None and n:
        progress(n)
    return n
