"""The progress hook the library offers; the CLI turns it into a tqdm bar.

A long-running library call takes ``progress: ProgressCallback | None`` and calls it
with the number of bytes just processed. The library never prints.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[int], None]
