use crate::common;

use common::assert_status;
use dataport_core::market::bars::parse_csv;
use dataport_proto::idc::indicator_client::IndicatorClient;
use dataport_proto::idc::indicator_graph_client::IndicatorGraphClient;
use dataport_proto::idc::{MacdGraphRequest, MacdRequest};
use dataport_store::bars::{BarStore, SqliteBarStore};
use tonic::Code;
use tonic::transport::Channel;

async fn with_sample(default_symbol: Option<&str>) -> (common::TestServer, IndicatorClient<Channel>) {
    let (mut config, dir) = common::config();
    config.sample_data = true;
    config.default_symbol = default_symbol.map(str::to_owned);
    let server = common::start_with(config, dir).await;
    let client = IndicatorClient::new(server.channel().await);
    (server, client)
}

fn request(symbol: &str, start: &str, end: &str) -> MacdRequest {
    MacdRequest { start_date: start.into(), end_date: end.into(), symbol: symbol.into() }
}

fn close(a: f32, b: f64) -> bool {
    (f64::from(a) - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[tokio::test]
async fn get_macd_answers_every_day_in_range_with_talibs_values() {
    let (_server, mut client) = with_sample(None).await;
    let reply = client.get_macd(request("AAPL", "2010-01-04", "2010-01-08")).await.unwrap().into_inner();
    let dates: Vec<&str> = reply.macd.iter().map(|d| d.date.as_str()).collect();
    assert_eq!(dates, ["2010-01-04", "2010-01-05", "2010-01-06", "2010-01-07", "2010-01-08"]);
    // TA-Lib 0.8.2 over AAPL's whole stored history (tests/oracle/.venv/bin/python:
    // talib.MACD(closes) at 2010-01-04 and 2010-01-05, closes from data/sample/bars.csv.gz).
    let first = &reply.macd[0];
    assert_eq!((first.open, first.close), (213.43, 214.01));
    assert!(close(first.macd, 3.926500332345171), "{}", first.macd);
    assert!(close(first.signal, 2.1483999269706064), "{}", first.signal);
    assert!(close(first.histogram, 1.7781004053745644), "{}", first.histogram);
    assert!(close(reply.macd[1].macd, 4.287592801416508));
}

#[tokio::test]
async fn get_macd_answers_over_prices_as_traded_unless_configured_adjusted() {
    let range = ("MSFT", "2003-02-14", "2003-02-18");
    let (_server, mut client) = with_sample(None).await;
    let raw = client.get_macd(request(range.0, range.1, range.2)).await.unwrap().into_inner();
    assert_eq!(raw.macd.iter().map(|d| d.close).collect::<Vec<_>>(), [48.3, 24.96]);

    let (mut config, dir) = common::config();
    (config.sample_data, config.compat_adjusted) = (true, true);
    let server = common::start_with(config, dir).await;
    let mut client = IndicatorClient::new(server.channel().await);
    let adjusted = client.get_macd(request(range.0, range.1, range.2)).await.unwrap().into_inner();
    // The source's Adj Close (data/sample/bars.csv.gz), as the seed's floats.
    let closes: Vec<f32> = adjusted.macd.iter().map(|d| d.close).collect();
    assert_eq!(closes, [16.076442938105_f64 as f32, 16.61565282547_f64 as f32]);
    // The split is no crash: MACD moves a little, not by 1.7 in a day as over raw closes.
    let jump = |r: &dataport_proto::idc::MacdReply| (r.macd[1].macd - r.macd[0].macd).abs();
    assert!(jump(&raw) > 1.0 && jump(&adjusted) < 0.5, "{} {}", jump(&raw), jump(&adjusted));
}

#[tokio::test]
async fn days_inside_the_lookback_are_omitted() {
    let (_server, mut client) = with_sample(None).await;
    let reply = client.get_macd(request("AAPL", "2000-01-01", "2000-04-18")).await.unwrap().into_inner();
    let dates: Vec<&str> = reply.macd.iter().map(|d| d.date.as_str()).collect();
    // AAPL's history starts 2000-03-01; bar 33, its first MACD, is 2000-04-17.
    assert_eq!(dates, ["2000-04-17", "2000-04-18"]);
    assert!(close(reply.macd[0].macd, -1.2716984411057553));
}

#[tokio::test]
async fn a_range_without_bars_is_an_empty_reply() {
    let (_server, mut client) = with_sample(None).await;
    let reply = client.get_macd(request("MSFT", "2020-01-01", "2020-12-31")).await.unwrap().into_inner();
    assert!(reply.macd.is_empty());
    let weekend = client.get_macd(request("MSFT", "2010-01-09", "2010-01-10")).await.unwrap().into_inner();
    assert!(weekend.macd.is_empty());
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let (_server, mut client) = with_sample(None).await;
    let cases = [
        (("AAPL", "2010-1-4", "2010-01-08"), Code::InvalidArgument, &["start_date \"2010-1-4\""][..]),
        (("AAPL", "2010-01-04", ""), Code::InvalidArgument, &["end_date \"\""]),
        (
            ("AAPL", "2010-02-01", "2010-01-01"),
            Code::InvalidArgument,
            &["start_date 2010-02-01 is after end_date 2010-01-01"],
        ),
        (("A B", "2010-01-04", "2010-01-08"), Code::InvalidArgument, &["symbol \"A B\""]),
        (("TSLA", "2010-01-04", "2010-01-08"), Code::NotFound, &["\"TSLA\"", "AAPL, GOOG, IBM, MSFT"]),
    ];
    for ((symbol, start, end), code, parts) in cases {
        assert_status(client.get_macd(request(symbol, start, end)).await, code, parts);
    }
}

#[tokio::test]
async fn an_empty_symbol_means_the_default_else_the_only_symbol_else_a_list() {
    let (_server, mut client) = with_sample(None).await;
    assert_status(
        client.get_macd(request("", "2010-01-04", "2010-01-08")).await,
        Code::InvalidArgument,
        &["AAPL, GOOG, IBM, MSFT"],
    );

    let (_server, mut client) = with_sample(Some("IBM")).await;
    let via_default = client.get_macd(request("", "2010-01-04", "2010-01-04")).await.unwrap().into_inner();
    let named = client.get_macd(request("IBM", "2010-01-04", "2010-01-04")).await.unwrap().into_inner();
    assert_eq!(via_default, named);
    assert_eq!(via_default.macd.len(), 1);

    // A store holding one symbol answers for it.
    let (config, dir) = common::config();
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let store = SqliteBarStore::open(&config.data_dir).unwrap();
    let mut csv = String::from("date,open,high,low,close\n");
    for day in 1..=28 {
        for month in 1..=2 {
            let close = f64::from(day) + f64::from(month) * 30.0;
            csv.push_str(&format!(
                "2021-{month:02}-{day:02},{close},{},{},{close}\n",
                close + 1.0,
                close - 1.0
            ));
        }
    }
    store.import("ONLY", &parse_csv(csv.as_bytes()).unwrap()).unwrap();
    drop(store);
    let server = common::start_with(config, dir).await;
    let mut client = IndicatorClient::new(server.channel().await);
    let reply = client.get_macd(request("", "2021-01-01", "2021-12-31")).await.unwrap().into_inner();
    assert_eq!(reply.macd.len(), 56 - 33);
}

async fn graph(
    client: &mut IndicatorGraphClient<Channel>,
    req: MacdGraphRequest,
) -> Result<Vec<Vec<u8>>, tonic::Status> {
    let mut stream = client.get_macd_graph(req).await?.into_inner();
    let mut chunks = Vec::new();
    while let Some(reply) = stream.message().await? {
        chunks.push(reply.macd_chunk);
    }
    Ok(chunks)
}

fn graph_request(symbol: &str, start: &str, end: &str) -> MacdGraphRequest {
    MacdGraphRequest { start_date: start.into(), end_date: end.into(), symbol: symbol.into() }
}

#[tokio::test]
async fn get_macd_graph_streams_a_1000x700_png_in_chunks_of_at_most_64_kib() {
    let (server, _) = with_sample(Some("GOOG")).await;
    let mut client = IndicatorGraphClient::new(server.channel().await);
    let chunks = graph(&mut client, graph_request("", "2012-01-01", "2012-12-31")).await.unwrap();
    assert!(
        chunks.iter().all(|c| !c.is_empty() && c.len() <= 64 * 1024),
        "{:?}",
        chunks.iter().map(Vec::len)
    );
    let png: Vec<u8> = chunks.concat();
    let mut reader = png::Decoder::new(std::io::Cursor::new(&png)).read_info().expect("a PNG");
    assert_eq!((reader.info().width, reader.info().height), (1000, 700));
    let mut pixels = vec![0; reader.output_buffer_size().expect("fits")];
    reader.next_frame(&mut pixels).expect("the whole image decodes");

    // A range without bars still answers a chart (that says so).
    let empty = graph(&mut client, graph_request("GOOG", "2030-01-01", "2030-12-31")).await.unwrap();
    assert!(empty.concat().starts_with(b"\x89PNG\r\n\x1a\n"));
}

#[tokio::test]
async fn get_macd_graph_refuses_bad_requests() {
    let (server, _) = with_sample(None).await;
    let mut client = IndicatorGraphClient::new(server.channel().await);
    assert_status(
        graph(&mut client, graph_request("GOOG", "2012-01-01", "2012-13-01")).await,
        Code::InvalidArgument,
        &["end_date \"2012-13-01\""],
    );
    assert_status(
        graph(&mut client, graph_request("NOPE", "2012-01-01", "2012-12-01")).await,
        Code::NotFound,
        &["\"NOPE\""],
    );
    assert_status(
        graph(&mut client, graph_request("", "2012-01-01", "2012-12-01")).await,
        Code::InvalidArgument,
        &["symbol is empty", "AAPL, GOOG, IBM, MSFT"],
    );
}
