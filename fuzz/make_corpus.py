#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<target>/, from the inputs below.

Run from anywhere: python3 fuzz/make_corpus.py (needs the zstd command).
Each file is named after what it shows; the formats are those the targets
document at their top (0xFF and 0xFE separate text fields: never UTF-8).
"""

import gzip
import hashlib
import pathlib
import shutil
import struct
import subprocess
import zlib

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    path = CORPUS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def zstd(data, *flags):
    return subprocess.run(["zstd", "-q", "-c", *flags], input=data, stdout=subprocess.PIPE, check=True).stdout


def csv_bars():
    t = "csv_bars"
    write(t, "comma", "date,open,high,low,close,volume\n2024-01-02,10,11,9,10.5,100\n2024-01-03,10.5,12,10,11.75,250\n")
    write(t, "semicolon_adj_close", "Date;Open;High;Low;Close;Adj Close\n2024-01-03;10;11;9;10;5\n2024-01-02;20;22;18;20;10\n")
    write(t, "tab_extra_columns", "date\topen\thigh\tlow\tclose\tnote\n2024-02-29\t1e2\t1.5e2\t50\t100\tleap day\n")
    write(t, "quoted_crlf_blank", 'date,open,high,low,close\r\n"2024-01-02","1","2","0.5","1.5"\r\n\r\n , , \r\n')
    write(t, "by_symbol", "symbol,date,open,high,low,close,volume,adj_close\naapl,2024-01-02,10,11,9,10,100,\nBRK.B,2024-01-02,5,6,4,5,,2.5\n")
    write(t, "duplicate_date", "date,open,high,low,close\n2024-01-02,1,2,0,1\n2024-01-02,1,2,0,1\n")
    write(t, "high_below_low", "date,open,high,low,close\n2024-01-02,10,9,11,10\n")
    write(t, "bad_numbers", "date,open,high,low,close,volume\n2024-01-02,NaN,inf,-0,1,-5\n2023-02-29,1,1,1,1\n")
    write(t, "missing_column", "date,open,high,close\n2024-01-02,1,2,1\n")
    write(t, "duplicate_column", "date,open,high,low,close,Close\n")


def frame(flag, message):
    return bytes([flag]) + struct.pack(">I", len(message)) + message


def wire_reader():
    t = "wire_reader"
    # [limit] [refuse_at, 255 none] [n] [n cuts] [stream...]
    two = frame(0, b"hello") + frame(1, b"") + frame(0, b"x" * 40)
    write(t, "two_messages_whole", bytes([100, 255, 0]) + two)
    write(t, "cut_every_byte", bytes([100, 255, 1, 1]) + two)
    write(t, "cut_in_prefix", bytes([100, 255, 3, 2, 0, 7]) + two)
    write(t, "over_limit", bytes([10, 255, 1, 3]) + frame(0, b"x" * 11))
    write(t, "at_limit", bytes([11, 255, 1, 4]) + frame(0, b"y" * 11))
    write(t, "bad_flag", bytes([100, 255, 0]) + frame(0, b"ok") + bytes([2, 0, 0, 0, 1, 0]))
    write(t, "consumer_refuses", bytes([100, 2, 2, 5, 1]) + two)
    write(t, "ends_inside_message", bytes([200, 255, 1, 6]) + frame(0, b"z" * 30)[:20])
    write(t, "ends_inside_prefix", bytes([200, 255, 0]) + frame(0, b"ab") + bytes([0, 0, 0]))
    write(t, "huge_length", bytes([255, 255, 0]) + bytes([0, 255, 255, 255, 255]) + b"more")


def decompress():
    t = "decompress"
    # [encoding 0 gzip, 1 deflate, 2 zstd] [limit, u16 big-endian] [message]
    text = b"date,open,high,low,close\n" + b"2024-01-02,1,2,0,1\n" * 20
    limit = struct.pack(">H", 4096)
    write(t, "gzip", b"\x00" + limit + gzip.compress(text, mtime=0))
    write(t, "deflate", b"\x01" + limit + zlib.compress(text))
    write(t, "zstd", b"\x02" + limit + zstd(text))
    write(t, "zstd_no_checksum", b"\x02" + limit + zstd(text, "--no-check"))
    zeros = bytes(1 << 20)
    write(t, "gzip_bomb", b"\x00" + struct.pack(">H", 100) + gzip.compress(zeros, mtime=0))
    write(t, "deflate_bomb", b"\x01" + struct.pack(">H", 100) + zlib.compress(zeros, 9))
    write(t, "zstd_bomb", b"\x02" + struct.pack(">H", 100) + zstd(zeros, "-19"))
    write(t, "gzip_truncated", b"\x00" + limit + gzip.compress(text, mtime=0)[:-6])
    bad = bytearray(zlib.compress(text))
    bad[-1] ^= 1
    write(t, "deflate_bad_checksum", b"\x01" + limit + bytes(bad))
    write(t, "gzip_two_members", b"\x00" + limit + gzip.compress(b"a" * 10, mtime=0) + gzip.compress(b"b", mtime=0))
    write(t, "empty_message", b"\x02\x00\x00")


def names():
    t = "names"
    # name 0xFF id 0xFF digest 0xFF raw
    digest = hashlib.sha256(b"").hexdigest()
    sep = b"\xff"

    def fields(*parts):
        return sep.join(p.encode() if isinstance(p, str) else p for p in parts)

    write(t, "plain", fields("report.pdf", "u-1"))
    write(t, "with_digest", fields("report.pdf", "u-1", digest, f"uploads/u-2/files/data.csv/sha256/{digest.upper()}"))
    write(t, "dots", fields("..", ".", "", "files/.."))
    write(t, "separators", fields("a/b", "a\\b", "g" * 64, "uploads/u/files/a/b"))
    write(t, "control_and_nul", fields("a\nb", "u\0", "", "files/tab\there"))
    write(t, "unicode", fields("résumé ☃.txt", "上传-1", "", "files/\u202eevil.txt"))
    write(t, "too_long", fields("n" * 256, "i" * 255, "", "files/" + "n" * 255))
    write(t, "form_words", fields("sha256", "files", "", "uploads/files/files/sha256"))
    write(t, "slashes", fields("", "", "", "/" * 300))
    write(t, "invalid_utf8", b"\xc3\x28" + sep + b"\xe2\x82" + sep + sep + b"files/\xed\xa0\x80")


def tokens_config():
    t = "tokens_config"
    ff, fe = b"\xff", b"\xfe"
    # 0: token file text, [method] secret 0xFF text
    token_file = (
        '[[token]]\nname = "collector"\n'
        f'sha256 = "{hashlib.sha256(b"s3cret").hexdigest()}"\n'
        'scopes = ["outliers:read", "market:read"]\n\n'
        '[[client]]\nname = "ingest.example.com"\nscopes = ["files:write"]\n'
    )
    write(t, "token_file", b"\x00\x08" + b"s3cret" + ff + token_file.encode())
    write(t, "token_file_bad_hex", b"\x00\x02x" + ff + b'[[token]]\nname = "a"\nsha256 = "abc"\nscopes = []\n')
    write(t, "token_file_unknown_field", b"\x00\x00x" + ff + b'[[token]]\nname = "a"\nsecret = "x"\n')
    # 1: config file text
    write(t, "config_file", b'\x01listen = "127.0.0.1:50051"\ndata_dir = "data"\nlog_format = "json"\nshutdown_timeout = 2.5\nmax_detect_bytes = "64MiB"\nsample_data = false\n')
    write(t, "config_unknown_key", b'\x01listen = "127.0.0.1:1"\nlisten_on = 5\n')
    write(t, "config_table_value", b"\x01[tls]\ncert = 1\n")
    write(t, "config_tls_half", b'\x01tls_cert = "server.pem"\n')

    # 2: planned token file, [method] records
    def rec(kind, *fields):
        return kind.encode() + fe.join(f.encode() for f in fields)

    planned = ff.join([
        rec("t", "collector", "s3cret", "outliers:read", "market:write"),
        rec("t", "admin", "root-secret", "*:write"),
        rec("c", "ingest.example.com", "files:write"),
        rec("c", "ingest.example.com", "files:read"),
        rec("u", "not-a-secret"),
    ])
    for method in (0, 2, 6, 9, 11, 12):
        write(t, f"planned_method_{method}", b"\x02" + bytes([method]) + planned)
    write(t, "planned_bad_scope", b"\x02\x03" + rec("t", "x", "y", "files:admin", "files"))
    write(t, "planned_same_secret", b"\x02\x03" + ff.join([rec("t", "a", "same"), rec("t", "b", "same")]))

    # 3: planned settings, key 0xFE kind value
    def setting(key, value):
        return key.encode() + fe + value.encode()

    write(t, "settings", b"\x03" + ff.join([
        setting("listen", "s127.0.0.1:0"),
        setting("shutdown_timeout", "f2.5"),
        setting("max_entities", "i10"),
        setting("simulate_orbit", "btrue"),
        setting("max_detect_bytes", "s1 GiB"),
    ]))
    write(t, "settings_invalid", b"\x03" + ff.join([
        setting("max_entities", "i0"),
        setting("shutdown_timeout", "s-1s"),
        setting("log_format", "sxml"),
    ]))
    write(t, "settings_tls_together", b"\x03" + setting("tls_client_ca", "sca.pem"))


if __name__ == "__main__":
    for target in ("csv_bars", "wire_reader", "decompress", "names", "tokens_config"):
        shutil.rmtree(CORPUS / target, ignore_errors=True)
    csv_bars()
    wire_reader()
    decompress()
    names()
    tokens_config()
