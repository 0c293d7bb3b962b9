"""/metrics (`--metrics-listen`), as Prometheus scrapes it: grpcio calls
counted under go-grpc-middleware's names and labels, read back with the
Prometheus client library's own parser of the text format."""

import os
import urllib.error
import urllib.request

import file_pb2 as f
import file_pb2_grpc as f_grpc
import grpc
import helloworld_pb2
import helloworld_pb2_grpc
import outliers_pb2 as seed
import outliers_pb2_grpc as seed_grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import open_channel
from interop import RPC_TIMEOUT

GREETER = {"grpc_type": "unary", "grpc_service": "helloworld.Greeter", "grpc_method": "SayHello"}
UPLOAD = {"grpc_type": "client_stream", "grpc_service": "FileSrv", "grpc_method": "UploadFile"}
DOWNLOAD = {"grpc_type": "server_stream", "grpc_service": "FileSrv", "grpc_method": "DownloadFile"}
DETECT = {"grpc_type": "unary", "grpc_service": "pb.Outliers", "grpc_method": "Detect"}


def scrape(srv):
    url = f"http://{srv.listening['metrics_listen']}/metrics"
    with urllib.request.urlopen(url, timeout=RPC_TIMEOUT) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = reply.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def metered(start_server):
    srv = start_server("--metrics-listen", "127.0.0.1:0")
    with open_channel(srv.addr) as channel:
        yield srv, channel


def test_grpcio_calls_are_counted_as_go_grpc_middleware_counts_them(metered):
    srv, channel = metered
    greeter = helloworld_pb2_grpc.GreeterStub(channel)
    for _ in range(3):
        greeter.SayHello(helloworld_pb2.HelloRequest(name="m"), timeout=RPC_TIMEOUT)
    # Compressed messages are counted as messages too.
    greeter.SayHello(helloworld_pb2.HelloRequest(name="gz"), timeout=RPC_TIMEOUT, compression=grpc.Compression.Gzip)

    files = f_grpc.FileSrvStub(channel)
    data = os.urandom(300_000)

    def uploads():
        yield f.UploadRequest(header=f.FileHeader(filename="metered", extension=".bin"))
        for i in range(0, len(data), 100_000):
            yield f.UploadRequest(chunk_data=data[i : i + 100_000])

    files.UploadFile(uploads(), timeout=RPC_TIMEOUT)
    chunks = list(files.DownloadFile(f.FileHeader(filename="metered", extension=".bin"), timeout=RPC_TIMEOUT))
    with pytest.raises(grpc.RpcError) as missing:
        list(files.DownloadFile(f.FileHeader(filename="absent", extension=".bin"), timeout=RPC_TIMEOUT))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    detect = seed_grpc.OutliersStub(channel)
    request = seed.OutliersRequest(metrics=[seed.Metric(name="cpu", value=float(i % 7)) for i in range(1000)])
    detect.Detect(request, timeout=RPC_TIMEOUT)

    m = scrape(srv)
    assert value(m, "grpc_server_started_total", **GREETER) == 4
    assert value(m, "grpc_server_handled_total", grpc_code="OK", **GREETER) == 4
    assert value(m, "grpc_server_msg_received_total", **GREETER) == 4
    assert value(m, "grpc_server_msg_sent_total", **GREETER) == 4
    assert value(m, "grpc_server_handling_seconds_count", **GREETER) == 4
    assert value(m, "grpc_server_handling_seconds_bucket", le="+Inf", **GREETER) == 4
    assert value(m, "grpc_server_handling_seconds_sum", **GREETER) > 0
    # The header and three chunks in, one reply out; a chunk message each way back.
    assert value(m, "grpc_server_msg_received_total", **UPLOAD) == 4
    assert value(m, "grpc_server_msg_sent_total", **UPLOAD) == 1
    assert value(m, "grpc_server_msg_sent_total", **DOWNLOAD) == len(chunks)
    assert value(m, "grpc_server_handled_total", grpc_code="NotFound", **DOWNLOAD) == 1
    assert value(m, "grpc_server_handled_total", grpc_code="OK", **DETECT) == 1
    assert value(m, "dataport_detect_points_judged_total") == 1000
    assert value(m, "dataport_files_stored") == 1
    assert value(m, "dataport_files_stored_bytes") == len(data)
    assert value(m, "dataport_uploads_in_progress") == 0
    assert value(m, "process_resident_memory_bytes") > 1_000_000
    assert value(m, "process_open_fds") > 3
    assert value(m, "process_cpu_seconds_total") > 0


def test_only_metrics_is_served_there(metered):
    srv, _ = metered
    with pytest.raises(urllib.error.HTTPError) as other:
        urllib.request.urlopen(f"http://{srv.listening['metrics_listen']}/", timeout=RPC_TIMEOUT)
    assert other.value.code == 404
