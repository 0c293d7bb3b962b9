"""Upload a file and download it back, with a progress line, through
dataport_client's helpers (dataport.files.v1, sha256 checked both ways;
--resume uploads through google.bytestream and continues a cut upload
when run again).

    python files.py --addr 127.0.0.1:50051 report.pdf --out inbox/
    python files.py --addr 127.0.0.1:50051 --size 8   # a made-up file of 8 MiB
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import dataport_client


def progress_printer(verb: str, name: str) -> dataport_client.Progress:
    """Prints "upload NAME: DONE/TOTAL bytes (P%)": in place on a terminal,
    else a line at every quarter."""
    shown = -1
    tty = sys.stdout.isatty()

    def show(done: int, total: int) -> None:
        nonlocal shown
        percent = 100 if total == 0 else done * 100 // total
        if percent == shown or (not tty and percent % 25):
            return
        shown = percent
        end = "\n" if done >= total or not tty else "\r"
        print(f"{verb} {name}: {done}/{total} bytes ({percent}%)", end=end, flush=True)

    return show


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", default="127.0.0.1:50051", help="the server, host:port")
    parser.add_argument("file", nargs="?", help="the file to upload (default: a made-up one of --size MiB)")
    parser.add_argument("--size", type=int, default=4, help="MiB of the made-up file")
    parser.add_argument("--name", help="store under this name (default: the file's base name)")
    parser.add_argument("--resume", action="store_true", help="a resumable upload (google.bytestream)")
    parser.add_argument("--out", help="the folder to download into (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.file) if args.file else Path(tmp) / "example.bin"
        if not args.file:
            path.write_bytes(os.urandom(args.size * 1024 * 1024))
        name = args.name or path.name
        out = Path(args.out) if args.out else Path(tmp) / "downloads"
        out.mkdir(parents=True, exist_ok=True)

        with dataport_client.Client(args.addr) as client:
            stored = client.upload_file(path, name, resume=args.resume, progress=progress_printer("upload", name))
            print(f"stored {stored.name} ({stored.size} bytes, sha256 {stored.sha256})")
            got = client.download_file(name, out, progress=progress_printer("download", name))
            print(f"downloaded {got.name} to {out / got.name} ({got.size} bytes, sha256 checked)")


if __name__ == "__main__":
    main()
