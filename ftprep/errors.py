"""The one exception tree of ftprep.

Problems *in the data* (a bad line, a wrong role, a file over the size limit) are
never raised: they are :class:`ftprep.problems.Problem` values in a report. The
exceptions below are for runs that cannot go on: a path that cannot be read, a bad
option or configuration, a split that is impossible, an API that refuses the work.

::

    FtprepError                     root; every error ftprep raises on purpose
    ├── UsageError                  bad option value, bad configuration (exit 2)
    │   ├── ConfigError             [tool.ftprep] or ftprep config invalid; names the key
    │   ├── SchemaError             a user's JSON Schema cannot be loaded or is invalid
    │   └── InsecureURLError        plain http:// to a non-loopback host, userinfo in URL
    ├── InputError                  a path that cannot be read: missing, directory,
    │                               FIFO, permission denied (exit 2)
    ├── SplitError                  a file cannot be sharded (a record over the limit) (exit 1)
    ├── OutputError                 an output path exists, escapes --out-dir, or is
    │                               a symlink (exit 2)
    ├── LedgerError                 the ledger cannot be read, locked or written (exit 1)
    └── APIError                    the Files API answered with an error, or could not be
        │                           reached (exit 1); carries .status and .server_message
        ├── TransportError          connection refused/reset, timeout: no HTTP answer
        ├── AuthenticationError     401/403: check MISTRAL_API_KEY (the key is never shown)
        ├── NotFoundError           404
        ├── PayloadTooLargeError    413: run `ftprep split`
        ├── ServerValidationError   422: .line_errors keeps errors[].line_number
        ├── RateLimitError          429 after the retries ran out
        └── ServerError             5xx after the retries ran out

Exit codes are not chosen here: ``ftprep.cli._errors`` owns the mapping from these
classes to process exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass


class FtprepError(Exception):
    """Root of every error ftprep raises on purpose.

    >>> try:
    ...     raise InputError("data.jsonl: no such file")
    ... except FtprepError as e:
    ...     print(e)
    data.jsonl: no such file
    """


class UsageError(FtprepError):
    """A bad option value or configuration."""


class ConfigError(UsageError):
    """An invalid ``[tool.ftprep]`` table (or other configuration); names the key."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class SchemaError(UsageError):
    """A JSON Schema that cannot be loaded, is invalid, or refers outside itself."""


class InsecureURLError(UsageError):
    """A base URL that would send the API key in clear text to a non-loopback host."""


class InputError(FtprepError):
    """A path that cannot be read as a regular file."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class SplitError(FtprepError):
    """A file cannot be sharded as asked (e.g. one record is larger than the limit)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class OutputError(FtprepError):
    """An output path that would overwrite, escape its directory or follow a symlink."""


class LedgerError(FtprepError):
    """The ledger cannot be read, locked or written."""


@dataclass(frozen=True)
class LineError:
    """One line-level complaint returned by the server (``errors[]`` of a 422)."""

    line_number: int | None
    message: str


class APIError(FtprepError):
    """The Files API refused the work or could not be reached.

    ``status`` is the HTTP status (``None`` when no answer came back) and
    ``server_message`` the server's own words, trimmed to a sane length.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message


class TransportError(APIError):
    """No HTTP answer: connection refused or reset, DNS failure, timeout."""


class AuthenticationError(APIError):
    """401/403: the key is missing, wrong or lacks access."""


class NotFoundError(APIError):
    """404: no such file on the server."""


class PayloadTooLargeError(APIError):
    """413: the file is over the server's size limit."""


class ServerValidationError(APIError):
    """422: the server rejected the content; ``line_errors`` keeps its line numbers."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 422,
        server_message: str | None = None,
        line_errors: tuple[LineError, ...] = (),
    ) -> None:
        super().__init__(message, status=status, server_message=server_message)
        self.line_errors = line_errors


class RateLimitError(APIError):
    """429 after the retry budget ran out."""


class ServerError(APIError):
    """5xx after the retry budget ran out."""
