"""The built wheel carries the built-in schemas: the library works outside the source tree."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
def test_the_wheel_ships_the_schemas_and_validates_outside_the_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = dist.glob("ftprep-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for fmt in ("chat", "pretrain", "classifier"):
        assert f"ftprep/_schemas/{fmt}.schema.json" in names
    assert "ftprep/py.typed" in names
    if importlib.util.find_spec("ftprep._speedups") is not None:
        # Built for this checkout, so built for the wheel too (a compiler is here).
        assert any(n.startswith("ftprep/_speedups.") and n.endswith(".so") for n in names)

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), wheel],
        check=True,
        capture_output=True,
        timeout=600,
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "a.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]}\n'
    )
    script = (
        "import json, ftprep; r = ftprep.validate(['a.jsonl']); "
        "print(json.dumps([ftprep.__file__, r.files[0].schema, "
        "[p.code for p in r.files[0].problems]]))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script],
        cwd=outside,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    module, schema, codes = json.loads(ran.stdout)
    assert Path(module).is_relative_to(target)
    assert schema == "chat"
    assert codes == ["FT204"]
