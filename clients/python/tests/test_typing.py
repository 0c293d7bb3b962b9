"""The installed package type-checks: mypy --strict (pinned) passes a
typed use of it, with assert_type pinning what the generated .pyi stubs and
the helpers give, and reports every misuse in another file, so the stubs
are real types and not Any."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "typing"
# Kept in the venv so reruns check only what changed.
CACHE = Path(sys.prefix) / ".mypy-cache"


def mypy(tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    # From a folder of its own, so mypy reads no project config and finds
    # dataport_client where pip installed it (its py.typed and .pyi files).
    shutil.copy(HERE / name, tmp_path / name)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(CACHE), name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_typed_use_passes_mypy_strict(tmp_path: Path) -> None:
    done = mypy(tmp_path, "usage_ok.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_misuse_is_a_mypy_error(tmp_path: Path) -> None:
    done = mypy(tmp_path, "usage_bad.py")
    assert done.returncode == 1, done.stdout + done.stderr
    source = (HERE / "usage_bad.py").read_text().splitlines()
    marked = {i for i, line in enumerate(source, 1) if line.endswith("# error")}
    reported = {int(m[1]) for m in re.finditer(r"^usage_bad\.py:(\d+): error:", done.stdout, re.M)}
    assert len(marked) == 13
    assert reported == marked, done.stdout


@pytest.mark.parametrize("module", ["dataport_client", "dataport_client.compat", "dataport_client.dataport.files.v1"])
def test_the_installed_package_ships_its_stubs_and_marker(module: str) -> None:
    import importlib

    folder = Path(importlib.import_module(module).__file__ or "").parent
    assert (Path(importlib.import_module("dataport_client").__file__ or "").parent / "py.typed").is_file()
    if module != "dataport_client":
        assert sorted(folder.glob("*_pb2*.pyi")), f"no .pyi stubs in {folder}"
