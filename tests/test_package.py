"""The package's public surface: what `import ftprep` promises."""

from __future__ import annotations

import ftprep


def test_public_names_are_sorted_resolvable_and_all_lazy_names_listed() -> None:
    assert ftprep.__all__ == sorted(ftprep.__all__)
    for name in ftprep.__all__:
        assert getattr(ftprep, name) is not None, name
    assert set(ftprep._LAZY) <= set(ftprep.__all__)


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        ftprep.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("expected AttributeError")
