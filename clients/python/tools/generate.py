"""Writes the generated modules of dataport_client from proto/.

Every proto/X/Y.proto becomes dataport_client/X/Y_pb2.py (messages),
Y_pb2.pyi (their types, by mypy-protobuf), Y_pb2_grpc.py (stubs and
servicers, by grpcio-tools) and Y_pb2_grpc.pyi (their types, by
mypy-protobuf's protoc-gen-mypy_grpc).

The descriptors keep the file names the server compiles and reflection
serves (helloworld.proto, dataport/files/v1/files.proto), so protoc runs
from proto/compat for the compat files and from proto/ for the others, as
the seed clients did. protoc then writes imports between generated modules
as top-level ones (`import helloworld_pb2`, `from dataport.files.v1 import
files_pb2`); this script rewrites exactly those to the package's modules
(`from dataport_client.compat import helloworld_pb2`), and names the package
module in each _pb2.py, so the classes' __module__ is where they live.

    python tools/generate.py OUT_DIR

writes the modules under OUT_DIR/dataport_client/ (nothing else there is
touched) and lists what it wrote.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
PROTO = ROOT / "proto"
PACKAGE = "dataport_client"
# Folders of proto/ whose files are compiled from proto/ itself; compat
# files are compiled from their own folder, under their seed names.
VERSIONED = ("dataport", "google")

INIT = '"""Generated from proto/ by clients/python/generate. Do not edit."""\n'


def protoc(include: Path, files: list[Path], out: Path) -> None:
    bin_dir = Path(sys.executable).parent
    argv = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{include}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out=quiet:{out}",
        f"--mypy_grpc_out=quiet:{out}",
        *(str(f.relative_to(include)) for f in files),
    ]
    subprocess.run(argv, check=True, cwd=include)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1]).resolve() / PACKAGE
    compat = sorted((PROTO / "compat").glob("*.proto"))
    versioned = sorted(p for d in VERSIONED for p in (PROTO / d).rglob("*.proto"))
    if not compat or not versioned:
        print(f"generate: no .proto files under {PROTO}", file=sys.stderr)
        return 1

    # Where protoc puts each module (its top-level name) and where it lives
    # in the package.
    modules: dict[str, str] = {}
    (out / "compat").mkdir(parents=True, exist_ok=True)
    protoc(PROTO / "compat", compat, out / "compat")
    for p in compat:
        modules[p.stem] = f"{PACKAGE}.compat.{p.stem}"
    protoc(PROTO, versioned, out)
    for p in versioned:
        dotted = ".".join(p.relative_to(PROTO).with_suffix("").parts)
        modules[dotted] = f"{PACKAGE}.{dotted}"

    written: list[Path] = []
    for top, full in sorted(modules.items()):
        base = out / Path(*full.split(".")[1:])
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi"):
            path = base.with_name(base.name + suffix)
            text = path.read_text(encoding="utf-8")
            path.write_text(rewrite(text, modules), encoding="utf-8")
            written.append(path)

    # Every folder on the way down is a regular package.
    folders = {p.parent for p in written}
    for folder in sorted(folders):
        while folder != out:
            init = folder / "__init__.py"
            init.write_text(INIT, encoding="utf-8")
            written.append(init)
            folder = folder.parent
    for path in sorted(set(written)):
        print(path.relative_to(out.parent))
    return 0


def rewrite(text: str, modules: dict[str, str]) -> str:
    """Points imports of generated modules, and each module's own name, at
    the package."""
    pb2 = {f"{top}_pb2": f"{full}_pb2" for top, full in modules.items()}
    pb2 |= {f"{top}_pb2_grpc": f"{full}_pb2_grpc" for top, full in modules.items()}

    def plain(m: re.Match[str]) -> str:
        # import helloworld_pb2 as x  /  import dataport.files.v1.files_pb2 as x
        full = pb2.get(m["mod"])
        if full is None:
            return m[0]
        pkg, _, name = full.rpartition(".")
        return f"{m['indent']}from {pkg} import {name}{m['rest']}"

    def from_(m: re.Match[str]) -> str:
        # from dataport.files.v1 import files_pb2 as x
        full = pb2.get(f"{m['pkg']}.{m['name']}")
        if full is None:
            return m[0]
        pkg, _, name = full.rpartition(".")
        return f"{m['indent']}from {pkg} import {name}{m['rest']}"

    def own_name(m: re.Match[str]) -> str:
        full = pb2.get(m["mod"])
        return m[0] if full is None else f"{m['head']}'{full}'"

    text = re.sub(r"^(?P<indent>[ \t]*)import (?P<mod>[\w.]+)(?P<rest> as \w+)$", plain, text, flags=re.M)
    text = re.sub(
        r"^(?P<indent>[ \t]*)from (?P<pkg>[\w.]+) import (?P<name>\w+)(?P<rest> as \w+)?$", from_, text, flags=re.M
    )
    text = re.sub(r"(?P<head>_builder\.BuildTopDescriptorsAndMessages\(DESCRIPTOR, )'(?P<mod>[\w.]+)'", own_name, text)
    # Nothing may still reach a generated module by its top-level name.
    for line in text.splitlines():
        m = re.match(r"\s*(?:import ([\w.]+)|from ([\w.]+) import (\w+))", line)
        if m and (m[1] in pb2 or f"{m[2]}.{m[3]}" in pb2):
            raise SystemExit(f"generate: an import was left unrewritten: {line.strip()}")
    return text


if __name__ == "__main__":
    sys.exit(main())
