"""Exit codes, owned here and nowhere else.

======  ==========================================================
code    meaning
======  ==========================================================
0       clean (warnings allowed)
1       problems found in the data, or the API refused the work
2       usage error, unreadable path, bad configuration
3       internal error: a bug (one line to the user, traceback in a log file)
130     interrupted (Ctrl-C)
======  ==========================================================
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from typing import NoReturn

import click

from ..errors import (
    APIError,
    FtprepError,
    InputError,
    LedgerError,
    OutputError,
    SplitError,
    UsageError,
)
from ..problems import Report

OK = 0
FOUND_PROBLEMS = 1
USAGE = 2
INTERNAL = 3
INTERRUPTED = 130

#: The problem code of a path that cannot be read: a usage error, not a data problem.
UNREADABLE_CODE = "FT011"

#: FtprepError branches and their exit codes; the first match wins.
EXIT_CODE_BY_ERROR: tuple[tuple[type[FtprepError], int], ...] = (
    (UsageError, USAGE),
    (InputError, USAGE),
    (OutputError, USAGE),
    (SplitError, FOUND_PROBLEMS),
    (LedgerError, FOUND_PROBLEMS),
    (APIError, FOUND_PROBLEMS),
    (FtprepError, FOUND_PROBLEMS),
)


def exit_code_for(error: FtprepError) -> int:
    for cls, code in EXIT_CODE_BY_ERROR:
        if isinstance(error, cls):
            return code
    return FOUND_PROBLEMS  # pragma: no cover (FtprepError is the last row)


def exit_code_for_report(report: Report) -> int:
    """The exit code of a validation: 2 if a path could not be read, 1 on errors, else 0."""
    if any(p.code == UNREADABLE_CODE for f in report.files for p in f.problems):
        return USAGE
    return OK if report.ok else FOUND_PROBLEMS


def redact(text: str) -> str:
    """Remove the API key from text about to leave the process."""
    key = os.environ.get("MISTRAL_API_KEY", "")
    if len(key) >= 4:
        text = text.replace(key, "[redacted]")
    return text


def _write_crash_log(exc: BaseException) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fd, path = tempfile.mkstemp(prefix=f"ftprep-crash-{stamp}-", suffix=".log")
    text = "".join(traceback.format_exception(exc))
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(redact(text))
    return path


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {redact(message)}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def error_handler() -> Iterator[None]:
    """Turn every way a command can end into one exit code and one line on stderr."""
    try:
        yield
    except FtprepError as e:
        fail(str(e), exit_code_for(e))
    except click.exceptions.Exit:
        raise
    except click.ClickException:
        raise  # click prints usage errors itself and exits 2
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(INTERRUPTED)
    except BrokenPipeError:
        # `ftprep ... | head`: the reader left; nothing more to say to it.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        sys.exit(OK)
    except Exception as e:
        log = _write_crash_log(e)
        fail(f"internal error ({type(e).__name__}); this is a bug. Details: {log}", INTERNAL)
