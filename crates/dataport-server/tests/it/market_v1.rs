//! dataport.market.v1.MarketService against a real server.

use crate::common;

use common::assert_status;
use dataport_proto::dataport::market::v1 as pb;
use dataport_proto::dataport::market::v1::market_service_client::MarketServiceClient;
use pb::indicator::Kind;
use tonic::Code;
use tonic::transport::Channel;

async fn server(sample: bool) -> (common::TestServer, MarketServiceClient<Channel>) {
    let (mut config, dir) = common::config();
    config.sample_data = sample;
    let server = common::start_with(config, dir).await;
    let client = MarketServiceClient::new(server.channel().await);
    (server, client)
}

fn csv_import(symbol: &str, csv: &str) -> Vec<pb::ImportBarsRequest> {
    // Split mid-line on purpose: pieces join into one file.
    let (a, b) = csv.as_bytes().split_at(csv.len() / 2);
    vec![
        pb::ImportBarsRequest { symbol: symbol.into(), csv: a.to_vec(), bars: vec![] },
        pb::ImportBarsRequest { symbol: String::new(), csv: b.to_vec(), bars: vec![] },
    ]
}

fn bar(date: &str, close: f64) -> pb::Bar {
    pb::Bar {
        date: date.into(),
        open: close,
        high: close + 1.0,
        low: close - 1.0,
        close,
        volume: Some(100.0),
        adj_close: None,
    }
}

async fn import(
    client: &mut MarketServiceClient<Channel>,
    messages: Vec<pb::ImportBarsRequest>,
) -> Result<pb::ImportBarsResponse, tonic::Status> {
    client.import_bars(tokio_stream::iter(messages)).await.map(|r| r.into_inner())
}

async fn symbols(client: &mut MarketServiceClient<Channel>) -> Vec<(String, u64)> {
    let reply = client.list_symbols(pb::ListSymbolsRequest {}).await.expect("lists").into_inner();
    reply.symbols.into_iter().map(|s| (s.symbol, s.bars)).collect()
}

/// Bars as traded (the golden values below are TA-Lib's over the raw closes).
fn get(symbol: &str, start: &str, end: &str) -> pb::GetBarsRequest {
    pb::GetBarsRequest {
        symbol: symbol.into(),
        start_date: start.into(),
        end_date: end.into(),
        adjusted: Some(false),
    }
}

#[tokio::test]
async fn imported_csv_is_listed_and_read_back_in_date_order() {
    let (_server, mut client) = server(false).await;
    let csv = "Close,DATE,extra,open,High,low,Volume\n\
               11,2024-01-03,x,10,12,9,1000\n\
               10.5,2024-01-02,y,10,11,10,\n\
               12,2024-01-04,z,11,13,11,2000\n";
    let reply = import(&mut client, csv_import("ACME", csv)).await.unwrap();
    assert_eq!((reply.symbol.as_str(), reply.imported), ("ACME", 3));
    let summary = reply.summary.unwrap();
    assert_eq!(
        (summary.bars, summary.first_date.as_str(), summary.last_date.as_str()),
        (3, "2024-01-02", "2024-01-04")
    );
    assert_eq!(symbols(&mut client).await, [("ACME".to_owned(), 3)]);

    let bars = client.get_bars(get("ACME", "", "")).await.unwrap().into_inner().bars;
    let dates: Vec<&str> = bars.iter().map(|b| b.date.as_str()).collect();
    assert_eq!(dates, ["2024-01-02", "2024-01-03", "2024-01-04"]);
    assert_eq!(
        bars[0],
        pb::Bar {
            date: "2024-01-02".into(),
            open: 10.0,
            high: 11.0,
            low: 10.0,
            close: 10.5,
            volume: None,
            adj_close: None
        }
    );
    assert_eq!(bars[1].volume, Some(1000.0));
    let from = client.get_bars(get("ACME", "2024-01-03", "")).await.unwrap().into_inner().bars;
    assert_eq!(from.len(), 2);
    let until = client.get_bars(get("ACME", "", "2024-01-02")).await.unwrap().into_inner().bars;
    assert_eq!(until.len(), 1);
    let none = client.get_bars(get("ACME", "2025-01-01", "2025-12-31")).await.unwrap().into_inner().bars;
    assert!(none.is_empty());
}

#[tokio::test]
async fn imported_bar_messages_replace_stored_dates() {
    let (_server, mut client) = server(false).await;
    let first = vec![pb::ImportBarsRequest {
        symbol: "XY".into(),
        csv: vec![],
        bars: vec![bar("2024-01-03", 5.0), bar("2024-01-02", 4.0)],
    }];
    assert_eq!(import(&mut client, first).await.unwrap().imported, 2);
    let second = vec![
        pb::ImportBarsRequest { symbol: "XY".into(), csv: vec![], bars: vec![bar("2024-01-03", 7.0)] },
        pb::ImportBarsRequest { symbol: "XY".into(), csv: vec![], bars: vec![bar("2024-01-05", 8.0)] },
    ];
    let reply = import(&mut client, second).await.unwrap();
    assert_eq!((reply.imported, reply.summary.unwrap().bars), (2, 3));
    let bars = client.get_bars(get("XY", "", "")).await.unwrap().into_inner().bars;
    let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
    assert_eq!(closes, [4.0, 7.0, 8.0]);
}

#[tokio::test]
async fn a_bad_import_names_the_problem_and_stores_nothing() {
    let (_server, mut client) = server(false).await;
    let ok = "date,open,high,low,close\n2024-01-02,1,2,1,1\n";
    let cases: Vec<(Vec<pb::ImportBarsRequest>, &[&str])> = vec![
        (vec![], &["the stream is empty"]),
        (csv_import("", ok), &["symbol must not be empty"]),
        (csv_import("BAD SYMBOL", ok), &["\"BAD SYMBOL\""]),
        (
            csv_import("A", "date,open,high,low,close\n2024-01-02,1,2,1,1\n2024-01-03,1,1,2,1\n"),
            &["csv: line 3: high 1 is below low 2"],
        ),
        (
            csv_import("A", "date,open,high,low,close\n2024-01-02,1,2,1,1\n2024-01-02,1,2,1,1\n"),
            &["line 3: date 2024-01-02 already appears on line 2"],
        ),
        (csv_import("A", "date,open,high,low\n"), &["no `close` column"]),
        (csv_import("A", "date,open,high,low,close\n\n"), &["csv has a header but no rows"]),
        (csv_import("A", "date,open,high,low,close\n2024-02-30,1,2,1,1\n"), &["line 2", "2024-02-30"]),
        (
            csv_import("A", "date,open,high,low,close\n2024-02-01,1,x,1,1\n"),
            &["line 2: high \"x\" is not a finite number"],
        ),
        (
            vec![
                pb::ImportBarsRequest { symbol: "A".into(), csv: ok.into(), bars: vec![] },
                pb::ImportBarsRequest { symbol: "B".into(), csv: vec![], bars: vec![] },
            ],
            &["symbol \"B\" differs from \"A\""],
        ),
        (
            vec![pb::ImportBarsRequest {
                symbol: "A".into(),
                csv: ok.into(),
                bars: vec![bar("2024-01-02", 1.0)],
            }],
            &["both csv and bars"],
        ),
        (
            vec![pb::ImportBarsRequest { symbol: "A".into(), csv: vec![], bars: vec![] }],
            &["nothing to import"],
        ),
        (
            vec![pb::ImportBarsRequest {
                symbol: "A".into(),
                csv: vec![],
                bars: vec![bar("2024-01-02", 1.0), bar("2024-01-02", 2.0)],
            }],
            &["bars[1]: date 2024-01-02 already appears in bars[0]"],
        ),
        (
            vec![pb::ImportBarsRequest {
                symbol: "A".into(),
                csv: vec![],
                bars: vec![bar("2024-01-02", 1.0), bar("2024/01/03", 1.0)],
            }],
            &["bars[1]", "2024/01/03"],
        ),
        (
            vec![pb::ImportBarsRequest {
                symbol: "A".into(),
                csv: vec![],
                bars: vec![pb::Bar { close: f64::NAN, ..bar("2024-01-02", 1.0) }],
            }],
            &["bars[0]: (2024-01-02) close NaN is not a finite number"],
        ),
        (
            vec![pb::ImportBarsRequest {
                symbol: "A".into(),
                csv: vec![],
                bars: vec![pb::Bar { high: -1.0, ..bar("2024-01-02", 1.0) }],
            }],
            &["bars[0]: (2024-01-02) high -1 is below low 0"],
        ),
    ];
    for (messages, parts) in cases {
        assert_status(import(&mut client, messages).await, Code::InvalidArgument, parts);
    }
    assert!(symbols(&mut client).await.is_empty(), "a refused import stored something");
}

#[tokio::test]
async fn an_import_past_the_bar_limit_is_resource_exhausted() {
    let (_server, mut client) = server(false).await;
    let many: Vec<pb::Bar> = (0..1000).map(|i| bar(&format!("2024-01-{:02}", 1 + i % 28), 1.0)).collect();
    let messages: Vec<_> = (0..1001)
        .map(|_| pb::ImportBarsRequest { symbol: "A".into(), csv: vec![], bars: many.clone() })
        .collect();
    assert_status(import(&mut client, messages).await, Code::ResourceExhausted, &["1000000"]);
    assert!(symbols(&mut client).await.is_empty());
}

#[tokio::test]
async fn get_bars_refuses_bad_requests() {
    let (_server, mut client) = server(true).await;
    let cases = [
        (("", "", ""), Code::InvalidArgument, &["symbol must not be empty"][..]),
        (("ZZZ", "", ""), Code::NotFound, &["\"ZZZ\"", "AAPL, GOOG, IBM, MSFT"]),
        (("IBM", "2010-02-30", ""), Code::InvalidArgument, &["start_date \"2010-02-30\""]),
        (
            ("IBM", "2010-02-03", "2010-02-01"),
            Code::InvalidArgument,
            &["start_date 2010-02-03 is after end_date 2010-02-01"],
        ),
    ];
    for ((symbol, start, end), code, parts) in cases {
        assert_status(client.get_bars(get(symbol, start, end)).await, code, parts);
    }
}

fn compute(symbol: &str, start: &str, end: &str, kinds: Vec<Kind>) -> pb::ComputeIndicatorsRequest {
    pb::ComputeIndicatorsRequest {
        symbol: symbol.into(),
        start_date: start.into(),
        end_date: end.into(),
        indicators: kinds.into_iter().map(|k| pb::Indicator { kind: Some(k) }).collect(),
        adjusted: Some(false),
    }
}

#[tokio::test]
async fn prices_are_split_adjusted_unless_asked_as_traded() {
    let (_server, mut client) = server(true).await;
    let listed = client.list_symbols(pb::ListSymbolsRequest {}).await.unwrap().into_inner().symbols;
    assert!(listed.iter().all(|s| s.adjusted), "the sample carries adjusted closes");
    // MSFT split 2:1 before trading on 2003-02-18: as traded, the close halves.
    let raw = client.get_bars(get("MSFT", "2003-02-14", "2003-02-18")).await.unwrap().into_inner();
    assert!(!raw.adjusted);
    assert_eq!(raw.bars.iter().map(|b| b.close).collect::<Vec<_>>(), [48.3, 24.96]);
    let adjusted = pb::GetBarsRequest { adjusted: None, ..get("MSFT", "2003-02-14", "2003-02-18") };
    let adjusted = client.get_bars(adjusted).await.unwrap().into_inner();
    assert!(adjusted.adjusted, "adjusted is the default");
    // The closes are the source's Adj Close (data/sample/bars.csv.gz), the
    // other prices move with them, and the volume moves the other way.
    let [before, after] = [&adjusted.bars[0], &adjusted.bars[1]];
    assert_eq!((before.close, after.close), (16.076442938105, 16.61565282547));
    let factor = 16.076442938105 / 48.3;
    assert_eq!((before.open, before.high), (47.25 * factor, 48.5 * factor));
    assert_eq!(before.volume, Some(45223200.0 / factor));
    assert_eq!(before.adj_close, Some(16.076442938105));

    // Indicators follow: SMA(1) is the close of the series asked for.
    let sma1 = || vec![Kind::Sma(pb::Sma { period: 1 })];
    let request = pb::ComputeIndicatorsRequest {
        adjusted: None,
        ..compute("MSFT", "2003-02-14", "2003-02-18", sma1())
    };
    let reply = client.compute_indicators(request).await.unwrap().into_inner();
    assert!(reply.adjusted);
    assert_eq!(reply.columns[0].values, [16.076442938105, 16.61565282547]);
    let reply = client.compute_indicators(compute("MSFT", "2003-02-14", "2003-02-18", sma1())).await.unwrap();
    assert_eq!(reply.into_inner().columns[0].values, [48.3, 24.96]);
}

#[tokio::test]
async fn symbols_are_stored_upper_case_and_found_in_any_case() {
    let (_server, mut client) = server(false).await;
    let csv = "date,open,high,low,close\n2024-01-02,1,2,1,2\n2024-01-03,1,2,1,2\n";
    let mut messages = csv_import("acme", csv);
    messages[1].symbol = "Acme".into(); // a later message may repeat the symbol in any case
    let reply = import(&mut client, messages).await.unwrap();
    assert_eq!(reply.symbol, "ACME");
    assert_eq!(symbols(&mut client).await, [("ACME".to_owned(), 2)]);
    let bars = client.get_bars(get("aCmE", "", "")).await.unwrap().into_inner().bars;
    assert_eq!(bars.len(), 2);
}

#[tokio::test]
async fn delete_symbol_removes_every_bar_of_one_symbol() {
    let (_server, mut client) = server(false).await;
    let csv = "date,open,high,low,close\n2024-01-02,1,2,1,2\n2024-01-03,1,2,1,2\n";
    import(&mut client, csv_import("ACME", csv)).await.unwrap();
    import(&mut client, csv_import("OTHER", csv)).await.unwrap();
    let reply = client.get_bars(get("ACME", "", "")).await.unwrap().into_inner();
    assert_eq!(reply.bars.len(), 2, "read once, so the cache holds it");
    let delete = |symbol: &str| pb::DeleteSymbolRequest { symbol: symbol.into() };
    let reply = client.delete_symbol(delete("acme")).await.unwrap().into_inner();
    assert_eq!((reply.symbol.as_str(), reply.deleted), ("ACME", 2));
    assert_eq!(symbols(&mut client).await, [("OTHER".to_owned(), 2)]);
    assert_status(client.get_bars(get("ACME", "", "")).await, Code::NotFound, &["\"ACME\"", "OTHER"]);
    assert_status(
        client.delete_symbol(delete("ACME")).await,
        Code::NotFound,
        &["\"ACME\" is not stored", "OTHER"],
    );
    assert_status(
        client.delete_symbol(delete("")).await,
        Code::InvalidArgument,
        &["symbol must not be empty"],
    );
    assert_status(client.delete_symbol(delete("A/B")).await, Code::InvalidArgument, &["\"A/B\""]);
}

#[tokio::test]
async fn indicators_come_as_columns_computed_over_the_whole_history() {
    let (_server, mut client) = server(true).await;
    let kinds = vec![
        Kind::Macd(pb::Macd::default()),
        Kind::Sma(pb::Sma { period: 5 }),
        Kind::Bollinger(pb::Bollinger { period: 20, dev_up: 2.0, dev_down: 0.0 }),
    ];
    let reply = client
        .compute_indicators(compute("AAPL", "2010-01-04", "2010-01-08", kinds))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.dates, ["2010-01-04", "2010-01-05", "2010-01-06", "2010-01-07", "2010-01-08"]);
    let names: Vec<&str> = reply.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "macd_12_26_9",
            "macd_12_26_9_signal",
            "macd_12_26_9_hist",
            "sma_5",
            "bollinger_20_2_2_upper",
            "bollinger_20_2_2_middle",
            "bollinger_20_2_2_lower",
        ]
    );
    assert!(reply.columns.iter().all(|c| c.values.len() == 5));
    // TA-Lib 0.8.2 over AAPL's whole stored history, bit for bit (tests/oracle/.venv/bin/python:
    // talib.MACD(closes) at 2010-01-04, closes from data/sample/bars.csv.gz).
    assert_eq!(reply.columns[0].values[0], 3.926500332345171);
    assert_eq!(reply.columns[1].values[0], 2.1483999269706064);
    // SMA(5) at 2010-01-08: the mean of the closes of 2010-01-04..08.
    let bars = client.get_bars(get("AAPL", "2010-01-04", "2010-01-08")).await.unwrap().into_inner().bars;
    let mean = bars.iter().map(|b| b.close).sum::<f64>() / 5.0;
    assert!((reply.columns[3].values[4] - mean).abs() < 1e-9, "{} vs {mean}", reply.columns[3].values[4]);
}

#[tokio::test]
async fn warm_up_days_hold_nan_and_defaults_follow_talib() {
    let (_server, mut client) = server(true).await;
    // AAPL's history starts 2000-03-01; RSI(14) and ATR(14) first answer on bar 14.
    let kinds =
        vec![Kind::Rsi(pb::Rsi::default()), Kind::Atr(pb::Atr::default()), Kind::Ema(pb::Ema::default())];
    let reply =
        client.compute_indicators(compute("AAPL", "", "2000-04-30", kinds)).await.unwrap().into_inner();
    let names: Vec<&str> = reply.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["rsi_14", "atr_14", "ema_30"]);
    assert_eq!(reply.dates[0], "2000-03-01");
    let first_value = |c: &pb::Column| c.values.iter().position(|v| !v.is_nan());
    assert_eq!(first_value(&reply.columns[0]), Some(14));
    assert_eq!(first_value(&reply.columns[1]), Some(14));
    assert_eq!(first_value(&reply.columns[2]), Some(29));
}

#[tokio::test]
async fn bad_indicator_requests_name_the_field_and_value() {
    let (_server, mut client) = server(true).await;
    let mut call = async |req| client.compute_indicators(req).await;
    assert_status(
        call(compute("AAPL", "", "", vec![])).await,
        Code::InvalidArgument,
        &["indicators is empty"],
    );
    let mut no_kind = compute("AAPL", "", "", vec![Kind::Sma(pb::Sma { period: 3 })]);
    no_kind.indicators.push(pb::Indicator { kind: None });
    assert_status(call(no_kind).await, Code::InvalidArgument, &["indicators[1] names no indicator"]);
    assert_status(
        call(compute(
            "AAPL",
            "",
            "",
            vec![Kind::Sma(pb::Sma { period: 3 }), Kind::Rsi(pb::Rsi { period: 100_001 })],
        ))
        .await,
        Code::InvalidArgument,
        &["indicators[1].rsi.period", "100001"],
    );
    let slow = pb::Macd { fast_period: 12, slow_period: 200_000, signal_period: 9 };
    assert_status(
        call(compute("AAPL", "", "", vec![Kind::Macd(slow)])).await,
        Code::InvalidArgument,
        &["indicators[0].macd.slow_period", "200000"],
    );
    let bands = pb::Bollinger { period: 5, dev_up: -1.0, dev_down: 2.0 };
    assert_status(
        call(compute("AAPL", "", "", vec![Kind::Bollinger(bands)])).await,
        Code::InvalidArgument,
        &["indicators[0].bollinger.dev_up -1"],
    );
    let many = vec![Kind::Sma(pb::Sma { period: 3 }); 65];
    assert_status(call(compute("AAPL", "", "", many)).await, Code::InvalidArgument, &["65", "at most 64"]);
    let sma = || vec![Kind::Sma(pb::Sma { period: 3 })];
    assert_status(
        call(compute("", "", "", sma())).await,
        Code::InvalidArgument,
        &["symbol must not be empty"],
    );
    assert_status(call(compute("NOPE", "", "", sma())).await, Code::NotFound, &["\"NOPE\""]);
    assert_status(call(compute("AAPL", "x", "", sma())).await, Code::InvalidArgument, &["start_date \"x\""]);
}

async fn render(
    client: &mut MarketServiceClient<Channel>,
    req: pb::RenderChartRequest,
) -> Result<(String, Vec<u8>, Vec<usize>), tonic::Status> {
    let mut stream = client.render_chart(req).await?.into_inner();
    let (mut content_type, mut image, mut sizes) = (String::new(), Vec::new(), Vec::new());
    while let Some(reply) = stream.message().await? {
        if sizes.is_empty() {
            content_type = reply.content_type;
        } else {
            assert!(reply.content_type.is_empty(), "content_type in a later message");
        }
        sizes.push(reply.chunk.len());
        image.extend(reply.chunk);
    }
    Ok((content_type, image, sizes))
}

fn chart(symbol: &str, start: &str, end: &str) -> pb::RenderChartRequest {
    pb::RenderChartRequest {
        symbol: symbol.into(),
        start_date: start.into(),
        end_date: end.into(),
        ..Default::default()
    }
}

fn png_size(image: &[u8]) -> (u32, u32) {
    let reader = png::Decoder::new(std::io::Cursor::new(image)).read_info().expect("a PNG");
    let info = reader.info();
    (info.width, info.height)
}

#[tokio::test]
async fn charts_stream_as_png_by_default_and_svg_on_request() {
    let (_server, mut client) = server(true).await;
    let (content_type, image, sizes) =
        render(&mut client, chart("GOOG", "2012-01-01", "2012-12-31")).await.unwrap();
    assert_eq!(content_type, "image/png");
    assert_eq!(png_size(&image), (1000, 700));
    assert!(sizes.iter().all(|&s| s <= 64 * 1024), "{sizes:?}");

    let small = pb::RenderChartRequest {
        width: 400,
        height: 300,
        panels: vec![pb::Panel::Macd as i32, pb::Panel::Price as i32],
        macd: Some(pb::Macd { fast_period: 5, slow_period: 10, signal_period: 3 }),
        ..chart("GOOG", "2012-06-01", "")
    };
    let (_, image, _) = render(&mut client, small).await.unwrap();
    assert_eq!(png_size(&image), (400, 300));

    let svg =
        pb::RenderChartRequest { format: pb::Format::Svg as i32, ..chart("IBM", "2013-01-01", "2013-03-31") };
    let (content_type, image, _) = render(&mut client, svg).await.unwrap();
    assert_eq!(content_type, "image/svg+xml");
    let text = String::from_utf8(image).unwrap();
    assert!(text.contains("<svg") && text.contains("IBM"), "{}", &text[..text.len().min(200)]);
}

#[tokio::test]
async fn chart_titles_name_macd_only_when_its_panel_is_drawn() {
    let (_server, mut client) = server(true).await;
    let svg = |panels: &[pb::Panel]| pb::RenderChartRequest {
        format: pb::Format::Svg as i32,
        panels: panels.iter().map(|p| *p as i32).collect(),
        ..chart("AAPL", "2012-01-01", "2012-12-31")
    };
    // plotters writes each text on a line of its own.
    let has_line = |svg: &str, line: &str| svg.lines().any(|l| l == line);
    let (_, image, _) = render(&mut client, svg(&[])).await.unwrap();
    let text = String::from_utf8(image).unwrap();
    assert!(has_line(&text, "AAPL daily, adjusted, 2012-01-03 to 2012-12-31, MACD(12, 26, 9)"), "{text}");

    for panels in [&[pb::Panel::Price][..], &[pb::Panel::Price, pb::Panel::Volume]] {
        let (_, image, _) = render(&mut client, svg(panels)).await.unwrap();
        let text = String::from_utf8(image).unwrap();
        assert!(has_line(&text, "AAPL daily, adjusted, 2012-01-03 to 2012-12-31"), "{panels:?}: {text}");
        assert!(!text.contains("MACD"), "{panels:?}: {text}");
    }
    let raw = pb::RenderChartRequest { adjusted: Some(false), ..svg(&[pb::Panel::Price]) };
    let (_, image, _) = render(&mut client, raw).await.unwrap();
    let text = String::from_utf8(image).unwrap();
    assert!(has_line(&text, "AAPL daily, as traded, 2012-01-03 to 2012-12-31"), "{text}");
}

#[tokio::test]
async fn bad_chart_requests_name_the_field_and_value() {
    let (_server, mut client) = server(true).await;
    let base = || chart("GOOG", "2012-01-01", "2012-12-31");
    let cases: Vec<(pb::RenderChartRequest, Code, &[&str])> = vec![
        (
            pb::RenderChartRequest { width: 199, ..base() },
            Code::InvalidArgument,
            &["width must be 200 to 4000 pixels, not 199"],
        ),
        (
            pb::RenderChartRequest { height: 4001, ..base() },
            Code::InvalidArgument,
            &["height must be 200 to 4000 pixels, not 4001"],
        ),
        (pb::RenderChartRequest { format: 7, ..base() }, Code::InvalidArgument, &["format 7"]),
        (pb::RenderChartRequest { panels: vec![1, 9], ..base() }, Code::InvalidArgument, &["panels[1] 9"]),
        (pb::RenderChartRequest { panels: vec![0], ..base() }, Code::InvalidArgument, &["panels[0] 0"]),
        (
            pb::RenderChartRequest {
                macd: Some(pb::Macd { signal_period: 100_001, ..Default::default() }),
                ..base()
            },
            Code::InvalidArgument,
            &["macd.signal_period", "100001"],
        ),
        (chart("", "", ""), Code::InvalidArgument, &["symbol must not be empty"]),
        (chart("NOPE", "", ""), Code::NotFound, &["\"NOPE\""]),
        (
            chart("GOOG", "2012-12-31", "2012-01-01"),
            Code::InvalidArgument,
            &["start_date 2012-12-31 is after"],
        ),
    ];
    for (req, code, parts) in cases {
        assert_status(render(&mut client, req).await, code, parts);
    }
}
