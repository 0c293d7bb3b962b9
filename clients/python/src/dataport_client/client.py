"""The Client: one channel, a typed stub per service, and the helpers."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import grpc

from dataport_client import files as _files
from dataport_client import market as _market
from dataport_client import outliers as _outliers
from dataport_client.compat import (
    file_pb2_grpc,
    helloworld_pb2_grpc,
    indicator_graph_pb2_grpc,
    indicator_pb2_grpc,
    outliers_pb2,
    outliers_pb2_grpc,
    position_pb2_grpc,
    route_guide_pb2_grpc,
    uploadfile_pb2_grpc,
)
from dataport_client.dataport.files.v1 import files_pb2, files_pb2_grpc
from dataport_client.dataport.market.v1 import market_pb2, market_pb2_grpc
from dataport_client.dataport.outliers.v1 import outliers_pb2 as outliers_v1_pb2
from dataport_client.dataport.outliers.v1 import outliers_pb2_grpc as outliers_v1_pb2_grpc
from dataport_client.dataport.position.v1 import position_pb2_grpc as position_v1_pb2_grpc
from dataport_client.google.bytestream import bytestream_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"
# Where a Client connects when given no address, as for the CLI.
ADDRESS_ENV = "DATAPORT_SERVER"
# The token a Client sends when given none, as for the CLI's --token.
TOKEN_ENV = "DATAPORT_TOKEN"
# The largest message the channel sends or takes. A Detect of a million
# values is 24 MB and the server takes up to max_detect_bytes (64 MiB by
# default); grpc's own default receive limit is 4 MiB. Past the server's
# limit the call is RESOURCE_EXHAUSTED, naming the limit.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
# Chunks of file transfers.
CHUNK_SIZE = 1024 * 1024


# A certificate or key for `Client(ca=, cert=, key=)`: a path to a PEM file
# (str or os.PathLike), or the PEM itself as bytes.
Pem: TypeAlias = str | os.PathLike[str] | bytes


class NotReady(grpc.FutureTimeoutError, TimeoutError):
    """Client.wait_ready gave up: no server answered at the address in time."""


def parse_address(address: str) -> tuple[str, bool]:
    """The gRPC target of an address as the CLI takes it, and whether it
    needs TLS: `HOST:PORT` (plaintext), `http://HOST:PORT` (plaintext) or
    `https://HOST:PORT` (TLS); a URL without a port has its scheme's (80,
    443). ValueError names anything else."""
    if "://" not in address:
        if not address.strip():
            raise ValueError("the server address is empty: give HOST:PORT, http://HOST:PORT or https://HOST:PORT")
        return address, False
    url = urllib.parse.urlsplit(address)
    schemes = {"http": (False, 80), "https": (True, 443)}
    if url.scheme not in schemes:
        raise ValueError(f"server address {address!r}: the scheme must be http:// or https://, not {url.scheme}://")
    try:
        port = url.port
    except ValueError as e:
        raise ValueError(f"server address {address!r}: {e}") from None
    if not url.hostname or url.path not in ("", "/") or url.query or url.fragment:
        raise ValueError(f"server address {address!r}: expected {url.scheme}://HOST:PORT and nothing more")
    secure, default_port = schemes[url.scheme]
    host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
    return f"{host}:{port if port is not None else default_port}", secure


def channel_options(extra: Iterable[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
    """The channel options a Client uses, with `extra` overriding them."""
    options: dict[str, Any] = {
        "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
        "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    }
    options.update(extra)
    return list(options.items())


def _read_pem(what: str, pem: Pem) -> bytes:
    """The bytes of a certificate or key: `pem` itself when bytes, else the
    file it names."""
    if isinstance(pem, bytes):
        return pem
    if isinstance(pem, str) and pem.lstrip().startswith("-----BEGIN"):
        raise ValueError(f"{what}: a str is a path; pass the PEM itself as bytes ({what}=pem.encode())")
    path = Path(pem)
    try:
        return path.read_bytes()
    except OSError as e:
        raise OSError(e.errno, f"{what}={str(path)!r}: cannot read it: {e.strerror}") from e


def tls_credentials(*, ca: Pem | None = None, cert: Pem | None = None, key: Pem | None = None) -> grpc.ChannelCredentials:
    """grpc.ssl_channel_credentials from PEM paths or bytes, as the CLI's
    --ca, --cert and --key take them: the server's certificate checked
    against `ca` (grpcio's default roots when None), and `cert` and `key`,
    given together, presented to a server that asks for a client
    certificate (mutual TLS)."""
    if (cert is None) != (key is None):
        given, missing = ("cert", "key") if key is None else ("key", "cert")
        raise ValueError(f"{given} needs {missing}: a client certificate is its chain and its private key")
    return grpc.ssl_channel_credentials(
        root_certificates=_read_pem("ca", ca) if ca is not None else None,
        private_key=_read_pem("key", key) if key is not None else None,
        certificate_chain=_read_pem("cert", cert) if cert is not None else None,
    )


def _bearer(token: str, source: str) -> str:
    """The `authorization` value of a token; ValueError, not naming the
    token, for one that cannot be a header value."""
    if not token.isascii() or not token.isprintable() or token != token.strip():
        raise ValueError(f"{source}: a token is printable ASCII without spaces around it (dataport token new prints one)")
    return f"Bearer {token}"


_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


class _CallDetails(grpc.ClientCallDetails):
    """A call's details with metadata of our choosing."""

    def __init__(self, details: grpc.ClientCallDetails, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = details.wait_for_ready
        self.compression = details.compression


class _BearerMetadata(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer TOKEN` to every call on a plaintext
    channel, where grpcio refuses call credentials (they need a secure
    channel)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(details, (*(details.metadata or ()), ("authorization", self._value)))

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _Request], grpc._CallFuture[_Response]],
        client_call_details: grpc.ClientCallDetails,
        request: _Request,
    ) -> grpc._CallFuture[_Response]:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, _Request], grpc._CallIterator[_Response]],
        client_call_details: grpc.ClientCallDetails,
        request: _Request,
    ) -> grpc._CallIterator[_Response]:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Iterator[_Request]], grpc._CallFuture[_Response]],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Iterator[_Request],
    ) -> grpc._CallFuture[_Response]:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Iterator[_Request]], grpc._CallIterator[_Response]],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Iterator[_Request],
    ) -> grpc._CallIterator[_Response]:
        return continuation(self._details(client_call_details), request_iterator)


class Client:
    """A connection to one Dataport server.

        with Client("127.0.0.1:50051") as client:
            print(client.greeter.SayHello(helloworld_pb2.HelloRequest(name="you")).message)
            client.upload_file("report.pdf")

        with Client("https://dataport.example.com:50051", ca="ca.pem", token=secret) as client:
            ...

    The address is what the CLI's --server takes: `HOST:PORT`,
    `http://HOST:PORT` or `https://HOST:PORT`; left out, it is
    DATAPORT_SERVER from the environment, else 127.0.0.1:50051.

    TLS, as the CLI's --ca, --cert and --key: an `https://` server is spoken
    to over TLS only, its certificate checked against `ca` (grpcio's
    default roots when None); `cert` and `key` together are the client
    certificate for mutual TLS. Each is a path to a PEM file (str or
    os.PathLike) or the PEM itself as bytes. Given any of them, a bare
    `HOST:PORT` is TLS too, and an `http://` address is a ValueError.
    `credentials` replaces all three with channel credentials of your own.

    `token` is sent with every call as `authorization: Bearer TOKEN`; None
    reads DATAPORT_TOKEN from the environment, "" sends none. Over TLS it
    is grpc.access_token_call_credentials composed with the channel's
    credentials; over plaintext (a server on this machine), where grpcio
    refuses call credentials, an interceptor adds the same metadata.

    Every failed call raises grpc.RpcError, whose code() and details() say
    why (UNAUTHENTICATED without a token the server knows,
    PERMISSION_DENIED naming the scope a token lacks). `timeout` is the
    deadline in seconds of each unary call the helpers make (None: none);
    transfers take their own `timeout`, None by default, as a big file may
    take long.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        ca: Pem | None = None,
        cert: Pem | None = None,
        key: Pem | None = None,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        options: Iterable[tuple[str, Any]] = (),
        timeout: float | None = 60.0,
    ) -> None:
        self.address = address if address is not None else os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS
        self.timeout = timeout
        target, secure = parse_address(self.address)
        if ca is not None or cert is not None or key is not None:
            if credentials is not None:
                raise ValueError("give ca, cert and key, or credentials, not both")
            if self.address.lower().startswith("http://"):
                raise ValueError(
                    f"server address {self.address!r}: ca, cert and key speak TLS, which an http:// server does not; "
                    "use https://"
                )
            secure = True
        if secure and credentials is None:
            credentials = tls_credentials(ca=ca, cert=cert, key=key)
        # Whether the channel speaks TLS (or whatever `credentials` give).
        self.secure = credentials is not None
        if token is None:
            token, source = os.environ.get(TOKEN_ENV, ""), TOKEN_ENV
        else:
            source = "token"
        bearer = _bearer(token, source) if token else None
        opts = channel_options(options)
        if credentials is not None:
            if token:
                credentials = grpc.composite_channel_credentials(credentials, grpc.access_token_call_credentials(token))
            self.channel: grpc.Channel = grpc.secure_channel(target, credentials, options=opts)
        else:
            self.channel = grpc.insecure_channel(target, options=opts)
            if bearer is not None:
                self.channel = grpc.intercept_channel(self.channel, _BearerMetadata(bearer))
        ch = self.channel
        # The seed services.
        self.greeter = helloworld_pb2_grpc.GreeterStub(ch)
        self.route_guide = route_guide_pb2_grpc.RouteGuideStub(ch)
        self.pos_xyz = position_pb2_grpc.PositionServiceStub(ch)
        self.indicator = indicator_pb2_grpc.IndicatorStub(ch)
        self.indicator_graph = indicator_graph_pb2_grpc.IndicatorGraphStub(ch)
        self.pb_outliers = outliers_pb2_grpc.OutliersStub(ch)
        self.file_srv = file_pb2_grpc.FileSrvStub(ch)
        self.file_service = uploadfile_pb2_grpc.FileServiceStub(ch)
        # Dataport's versioned APIs, and the Google API it serves.
        self.position = position_v1_pb2_grpc.PositionServiceStub(ch)
        self.market = market_pb2_grpc.MarketServiceStub(ch)
        self.outliers = outliers_v1_pb2_grpc.OutliersServiceStub(ch)
        self.files = files_pb2_grpc.FilesServiceStub(ch)
        self.bytestream = bytestream_pb2_grpc.ByteStreamStub(ch)
        # Detect with requests encoded by encode_metrics.
        self._detect_raw: grpc.UnaryUnaryMultiCallable[bytes, outliers_v1_pb2.DetectResponse] = ch.unary_unary(
            "/dataport.outliers.v1.OutliersService/Detect",
            request_serializer=None,
            response_deserializer=outliers_v1_pb2.DetectResponse.FromString,
        )
        self._detect_compat_raw: grpc.UnaryUnaryMultiCallable[bytes, outliers_pb2.OutliersResponse] = ch.unary_unary(
            "/pb.Outliers/Detect",
            request_serializer=None,
            response_deserializer=outliers_pb2.OutliersResponse.FromString,
        )

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Waits until the channel is connected; NotReady (a
        grpc.FutureTimeoutError and a TimeoutError) naming the address when
        it is not within `timeout` seconds."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise NotReady(
                f"no Dataport server answered at {self.address} within {timeout:g} s "
                f"(is `dataport serve` running there? pass the address, or set {ADDRESS_ENV})"
            ) from None

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Files

    def upload_file(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        resume: bool = False,
        progress: _files.Progress | None = None,
        chunk_size: int = CHUNK_SIZE,
        timeout: float | None = None,
    ) -> _files.FileInfo:
        """Stores the file at `path` under `name` (its base name by default)
        and answers it as stored, once durable.

        Without resume: one dataport.files.v1 Upload, the sha256 computed
        while sending and checked by the server before it commits
        (DATA_LOSS on a mismatch); a cut upload stores nothing.

        With resume: the file is hashed first, then written through
        google.bytestream from what the server already holds of this upload
        (its id derives from the name and the sha256, see `upload_id`), so
        calling again after a cut continues where the server's committed
        size stands; a file the server already holds with this content is not
        sent again.

        progress(done, total) is called before the first chunk and after
        each one. An exception it raises aborts the upload and is raised
        here."""
        p = Path(path)
        stored = name if name is not None else p.name
        if resume:
            return _files.upload_resumable(
                self.bytestream, self.files, p, stored, progress=progress, chunk_size=chunk_size, timeout=timeout
            )
        return _files.upload(self.files, p, stored, progress=progress, chunk_size=chunk_size, timeout=timeout)

    def download_file(
        self,
        name: str,
        dest: str | os.PathLike[str],
        *,
        progress: _files.Progress | None = None,
        timeout: float | None = None,
    ) -> _files.FileInfo:
        """Downloads the stored file `name` to `dest` (a file path, or a
        folder to put it in under its name), atomically: written to a
        temporary file beside it, checked against the announced size and
        sha256 (TransferError otherwise), fsynced, renamed into place."""
        return _files.download(self.files, name, Path(dest), progress=progress, timeout=timeout)

    def stat_file(self, name: str) -> _files.FileInfo:
        """The stored file `name`; grpc.RpcError NOT_FOUND when there is none."""
        reply = self.files.Stat(files_pb2.StatRequest(name=name), timeout=self.timeout)
        return _files.FileInfo.from_pb(reply.file)

    # Market

    def indicators(
        self,
        symbol: str,
        indicators: Sequence[str | market_pb2.Indicator],
        start: _market.DateLike | None = None,
        end: _market.DateLike | None = None,
        *,
        adjusted: bool = True,
    ) -> _market.IndicatorTable:
        """ComputeIndicators over the stored bars of `symbol` from `start` to
        `end` (dates or YYYY-MM-DD, inclusive; None leaves that end open).
        Each indicator is an Indicator message or a spec such as "sma:20",
        "rsi", "macd:12,26,9" or "bollinger:20,2,2".

        Over split- and dividend-adjusted prices by default, so a split is
        no crash in the values; adjusted=False for the prices as traded (as
        the seed GetMACD answers). The table's `adjusted` says which series
        the server used: False also when the symbol's bars carry no
        adjusted closes."""
        request = _market.indicators_request(symbol, indicators, start, end, adjusted=adjusted)
        return _market.IndicatorTable.from_pb(self.market.ComputeIndicators(request, timeout=self.timeout))

    def macd(
        self,
        symbol: str,
        start: _market.DateLike | None = None,
        end: _market.DateLike | None = None,
        *,
        fast: int = 12,
        slow: int = 26,
        signal: int = 9,
        adjusted: bool = True,
    ) -> _market.MacdRows:
        """MACD(fast, slow, signal) of closes, one row per stored day of the
        range, equal to TA-Lib's; NaN inside the warm-up. Over adjusted
        closes by default, adjusted=False for closes as traded (see
        `indicators`); the rows' `adjusted` says which. `.to_dataframe()`
        on the result gives a DataFrame (with pandas)."""
        spec = market_pb2.Indicator(
            macd=market_pb2.Macd(fast_period=fast, slow_period=slow, signal_period=signal)
        )
        table = self.indicators(symbol, [spec], start, end, adjusted=adjusted)
        return _market.macd_rows(table, fast, slow, signal)

    # Outliers

    def detect_outliers(
        self,
        values: Iterable[float],
        *,
        name: str = "",
        method: _outliers.Method = "zscore",
        threshold: float | None = None,
        sample: bool = False,
    ) -> _outliers.OutlierResult:
        """dataport.outliers.v1 Detect of one series (a list or a numpy
        array): the positions of its outliers, every value's score and the
        series' statistics. method: "zscore" (|x - mean| > threshold * sigma,
        threshold 2, population sigma unless sample), "modified" (Iglewicz
        and Hoaglin, 3.5) or "iqr" (Tukey's fences, k = threshold, 1.5).
        Values must be finite (INVALID_ARGUMENT otherwise)."""
        method_bytes = outliers_v1_pb2.DetectRequest(
            method=_outliers.method_message(method, threshold, sample)
        ).SerializeToString()
        request = _outliers.encode_metrics(values, name) + method_bytes
        reply: outliers_v1_pb2.DetectResponse = self._detect_raw(request, timeout=self.timeout)
        return _outliers.OutlierResult.from_pb(reply)

    def detect_outliers_compat(self, values: Iterable[float], *, name: str = "") -> list[int]:
        """The seed's pb.Outliers Detect: the positions of the values with
        |x - mean| > 2 sigma (population sigma), as numpy computes it."""
        reply: outliers_pb2.OutliersResponse = self._detect_compat_raw(
            _outliers.encode_metrics(values, name), timeout=self.timeout
        )
        return list(reply.indices)
