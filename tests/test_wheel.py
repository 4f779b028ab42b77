"""The built wheel carries the built-in schemas: the library works outside the source tree."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def source_copy(tmp_path: Path) -> Path:
    """What an sdist holds, copied: a build never sees this checkout's build/ or .so."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    for tree in ("ftprep", "schemas"):
        shutil.copytree(ROOT / tree, src / tree, ignore=skip)
    return src


@pytest.mark.timeout(600)
@pytest.mark.parametrize("compiler", ["cc", "none"])
def test_the_wheel_ships_the_schemas_and_validates_outside_the_checkout(
    tmp_path: Path, compiler: str
) -> None:
    dist = tmp_path / "dist"
    env = dict(os.environ)
    if compiler == "none":
        env["CC"] = "/bin/false"  # a machine without a C compiler
    src = source_copy(tmp_path)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = dist.glob("ftprep-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for fmt in ("chat", "pretrain", "classifier"):
        assert f"ftprep/_schemas/{fmt}.schema.json" in names
    assert "ftprep/py.typed" in names
    has_c = any(n.startswith("ftprep/_speedups.") and n.endswith(".so") for n in names)
    if compiler == "none":
        assert not has_c  # and still installs and works, in pure Python
    elif importlib.util.find_spec("ftprep._speedups") is not None:
        assert has_c  # built for this checkout, so a compiler is here

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
        "from ftprep import _native; "
        "print(json.dumps([ftprep.__file__, r.files[0].schema, "
        "[p.code for p in r.files[0].problems], _native.NATIVE]))"
    )
    ran = subprocess.run(
        # -S: no site hooks, so the checkout's editable install cannot lend its modules;
        # the dependencies come from this environment's site-packages, after the wheel.
        [sys.executable, "-S", "-c", script],
        cwd=outside,
        env={"PYTHONPATH": f"{target}:{sysconfig.get_paths()['purelib']}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    module, schema, codes, native = json.loads(ran.stdout)
    assert native == has_c
    assert Path(module).is_relative_to(target)
    assert schema == "chat"
    assert codes == ["FT204"]
