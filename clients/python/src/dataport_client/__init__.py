"""Python client for Dataport.

`Client` connects to a server and holds a typed stub for every service it
serves (`client.greeter`, `client.files`, `client.market`, ...), plus
helpers for what takes more than one call or some care:

- `Client.upload_file` / `Client.download_file`: files in 1 MiB chunks,
  checked by sha256, resumable uploads, atomic downloads, progress.
- `Client.macd` / `Client.indicators`: indicator rows, and DataFrames when
  pandas is installed, over split- and dividend-adjusted prices unless
  asked for the prices as traded (`adjusted=False`).
- `Client.detect_outliers` / `Client.detect_outliers_compat`: outliers of a
  list or a numpy array.

`Client("https://host:port", ca="ca.pem", token=secret)` speaks TLS (with
`cert` and `key`, mutual TLS) and sends the token with every call, as the
CLI's --ca, --cert, --key and --token do; DATAPORT_TOKEN is the token when
none is given.

The generated modules mirror proto/: proto/compat/helloworld.proto is
`dataport_client.compat.helloworld_pb2` (and `_pb2_grpc`),
proto/dataport/files/v1/files.proto is
`dataport_client.dataport.files.v1.files_pb2`, and
proto/google/bytestream/bytestream.proto is
`dataport_client.google.bytestream.bytestream_pb2`.
"""

from dataport_client.client import (
    ADDRESS_ENV,
    CHUNK_SIZE,
    DEFAULT_ADDRESS,
    MAX_MESSAGE_BYTES,
    TOKEN_ENV,
    Client,
    NotReady,
    Pem,
    channel_options,
    parse_address,
    tls_credentials,
)
from dataport_client.files import FileInfo, Progress, TransferError, upload_id, write_resource
from dataport_client.market import IndicatorRow, IndicatorTable, MacdRow, MacdRows
from dataport_client.outliers import OutlierResult, SeriesStats, encode_metrics

__version__ = "0.1.0"

__all__ = [
    "ADDRESS_ENV",
    "CHUNK_SIZE",
    "DEFAULT_ADDRESS",
    "MAX_MESSAGE_BYTES",
    "TOKEN_ENV",
    "Client",
    "FileInfo",
    "IndicatorRow",
    "IndicatorTable",
    "MacdRow",
    "MacdRows",
    "NotReady",
    "OutlierResult",
    "Pem",
    "Progress",
    "SeriesStats",
    "TransferError",
    "channel_options",
    "encode_metrics",
    "parse_address",
    "tls_credentials",
    "upload_id",
    "write_resource",
]
