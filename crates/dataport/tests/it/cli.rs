//! The client commands, run as a user runs them: the built binary against a
//! real server started in this process on an ephemeral port.

use assert_cmd::Command;
use dataport_testkit::BackgroundServer;
use dataport_testkit::cli::{dataport, failing, quietly, stdout_of};

#[test]
fn hello_prints_the_greeting() {
    let s = BackgroundServer::start();
    assert_eq!(stdout_of(dataport(s.addr()).args(["hello", "world"])), "Hello, world!\n");
    assert_eq!(stdout_of(dataport(s.addr()).args(["hello", "--again", "world"])), "Hello again, world!\n");
}

#[test]
fn health_exits_0_only_for_a_serving_server_or_service() {
    let s = BackgroundServer::start();
    assert_eq!(stdout_of(dataport(s.addr()).arg("health")), "SERVING\n");
    assert_eq!(stdout_of(dataport(s.addr()).args(["health", "helloworld.Greeter"])), "SERVING\n");
    let stderr = failing(dataport(s.addr()).args(["health", "nope.Service"]));
    assert!(stderr.starts_with("error: NOT_FOUND:") && stderr.contains("nope.Service"), "{stderr}");
    drop(s);
    // Nobody listens now: a probe fails rather than hangs.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let stderr = failing(Command::cargo_bin("dataport").expect("binary").args([
        "--server",
        &format!("127.0.0.1:{port}"),
        "health",
    ]));
    assert!(stderr.starts_with("error: cannot reach the server"), "{stderr}");
}

#[test]
fn server_can_come_from_the_environment_without_a_scheme() {
    let s = BackgroundServer::start();
    let mut cmd = Command::cargo_bin("dataport").expect("binary");
    cmd.env("DATAPORT_SERVER", s.addr().to_string()).args(["hello", "env"]);
    assert_eq!(stdout_of(&mut cmd), "Hello, env!\n");
}

#[test]
fn route_commands_print_features_and_summaries() {
    let s = BackgroundServer::start();
    let out = stdout_of(dataport(s.addr()).args(["route", "feature", "488583701", "22944813"]));
    assert_eq!(out, "Eiffel Tower, Paris, France at 48.8583701, 2.2944813 (488583701, 22944813)\n");
    // Decimal degrees, as the line prints them, name the same point.
    assert_eq!(stdout_of(dataport(s.addr()).args(["route", "feature", "48.8583701", "2.2944813"])), out);
    let out = stdout_of(dataport(s.addr()).args([
        "route",
        "record",
        "48.8583701,2.2944813",
        "52.5162746,13.3777041",
    ]));
    assert!(out.contains("2 points, 2 features"), "{out}");
    let out = stdout_of(dataport(s.addr()).args(["route", "feature", "-1", "-2"]));
    assert!(out.starts_with("(no feature) at"), "{out}");

    let out = stdout_of(dataport(s.addr()).args([
        "route",
        "list",
        "525162746",
        "133777041",
        "488583701",
        "22944813",
    ]));
    assert_eq!(out.lines().count(), 3, "{out}");

    let out =
        stdout_of(dataport(s.addr()).args(["route", "record", "488583701,22944813", "525162746,133777041"]));
    assert_eq!(out, "2 points, 2 features, 879088 m, 0 s\n");
    let out =
        stdout_of(dataport(s.addr()).args(["route", "record"]).write_stdin("488583701,22944813\n\n1,1\n"));
    assert_eq!(out, "2 points, 1 features, 5437263 m, 0 s\n");

    let out = stdout_of(dataport(s.addr()).args(["route", "chat", "1,1:a", "2,2:b", "1,1:c"]));
    assert_eq!(out, "0.0000001, 0.0000001 (1, 1): a\n");
}

#[test]
fn position_commands_publish_get_and_watch() {
    let s = BackgroundServer::start();
    let out = stdout_of(dataport(s.addr()).args(["position", "get"]));
    assert!(out.starts_with("default x=1 y=0 z=0 revision=0"), "{out}");

    // Start a watcher, then publish until it has printed what it was asked for.
    let watcher = std::process::Command::new(assert_cmd::cargo::cargo_bin("dataport"))
        .args(["--server", &format!("http://{}", s.addr()), "position", "watch", "drone", "--count", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let out = stdout_of(dataport(s.addr()).args(["position", "pub", "--entity", "drone", "1.5", "-2", "3"]));
    assert!(out.starts_with("drone x=1.5 y=-2 z=3 revision=1"), "{out}");
    // The time is ISO 8601, UTC, to the millisecond.
    let at = out.trim_end().rsplit(" at ").next().unwrap_or_default();
    assert!(at.len() == 24 && at.ends_with('Z') && humantime::parse_rfc3339(at).is_ok(), "{out}");
    // The watcher may have registered after that publish; keep publishing
    // until it prints and exits, which it does after one position.
    let mut watcher = watcher;
    for _ in 0..200 {
        if watcher.try_wait().expect("status").is_some() {
            break;
        }
        stdout_of(dataport(s.addr()).args(["position", "pub", "--entity", "drone", "1.5", "-2", "3"]));
    }
    let out = watcher.wait_with_output().expect("exits");
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    assert!(printed.starts_with("drone x=1.5 y=-2 z=3 revision="), "{printed}");
}

#[test]
fn failures_print_the_status_and_exit_non_zero() {
    let s = BackgroundServer::start();
    let out = dataport(s.addr()).args(["position", "get", "--entity", "ghost"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: NOT_FOUND: entity \"ghost\" has never been published\n"
    );
    assert!(out.stdout.is_empty());

    let out = dataport(s.addr()).args(["route", "feature", "900000001", "0"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: INVALID_ARGUMENT: point: latitude 900000001"), "{stderr}");

    let out = dataport(s.addr()).args(["position", "pub", "nan", "0", "0"]).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: INVALID_ARGUMENT: position.x must be finite"), "{stderr}");
}

#[test]
fn an_unreachable_server_is_named_in_the_error() {
    // Bind and drop to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let out = Command::cargo_bin("dataport")
        .expect("binary")
        .args(["--server", &format!("http://127.0.0.1:{port}"), "hello", "x"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("error: cannot reach the server at http://127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn malformed_arguments_are_usage_errors() {
    let out = Command::cargo_bin("dataport")
        .expect("binary")
        .args(["route", "record", "12;34"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not LAT,LON"));
    let out =
        Command::cargo_bin("dataport").expect("binary").args(["route", "feature", "200.5", "0"]).output();
    let out = out.expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("200.5 degrees is outside -180..180"));
}

#[test]
fn macd_prints_a_table_csv_or_json_lines() {
    let s = BackgroundServer::start();
    let range = ["--symbol", "aapl", "--start", "2010-01-04", "--end", "2010-01-05", "--raw"];
    let table = stdout_of(dataport(s.addr()).arg("macd").args(range));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("date") && lines[0].ends_with("histogram"), "{table}");
    assert!(
        lines[1].starts_with("2010-01-04") && lines[1].contains("214.01") && lines[1].contains("3.9265"),
        "{table}"
    );

    let csv = stdout_of(dataport(s.addr()).arg("macd").args(range).args(["--format", "csv"]));
    assert_eq!(csv.lines().next(), Some("date,open,high,low,close,macd,signal,histogram"));
    assert!(csv.lines().nth(2).is_some_and(|l| l.starts_with("2010-01-05,214.6,")), "{csv}");

    let json = stdout_of(dataport(s.addr()).arg("macd").args(range).args(["--format", "json"]));
    let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["date"], "2010-01-05");

    let out = dataport(s.addr()).args(["macd", "--symbol", "TSLA"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: NOT_FOUND: symbol \"TSLA\" is not stored")
            && stderr.contains("AAPL, GOOG, IBM, MSFT"),
        "{stderr}"
    );
}

#[test]
fn market_commands_show_adjusted_prices_unless_raw() {
    let s = BackgroundServer::start();
    // MSFT split 2:1 before trading on 2003-02-18.
    let range = ["--symbol", "MSFT", "--start", "2003-02-14", "--end", "2003-02-18", "--format", "csv"];
    let raw = stdout_of(dataport(s.addr()).args(["bars", "get", "--raw"]).args(range));
    assert_eq!(
        raw,
        "date,open,high,low,close,volume,adj_close\n\
         2003-02-14,47.25,48.5,46.77,48.3,45223200,16.076442938105\n\
         2003-02-18,24.62,24.99,24.4,24.96,28707750,16.61565282547\n"
    );
    let adjusted = stdout_of(dataport(s.addr()).args(["bars", "get"]).args(range));
    let closes: Vec<&str> = adjusted.lines().skip(1).map(|l| l.split(',').nth(4).unwrap()).collect();
    assert_eq!(closes, ["16.076442938105", "16.61565282547"], "{adjusted}");
    let macd = stdout_of(dataport(s.addr()).arg("macd").args(range));
    assert!(macd.lines().nth(1).is_some_and(|l| l.contains(",16.076442938105,")), "{macd}");
    let list = stdout_of(dataport(s.addr()).args(["bars", "list"]));
    assert!(list.lines().next().is_some_and(|l| l.ends_with("adjusted")), "{list}");
    assert!(list.lines().skip(1).all(|l| l.ends_with("yes")), "{list}");
}

#[test]
fn a_range_past_the_stored_bars_says_where_they_end() {
    let s = BackgroundServer::start();
    let out = dataport(s.addr())
        .args(["bars", "get", "--symbol", "ibm", "--start", "2013-02-28", "--end", "2013-06-30"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3, "a header and two bars");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "note: the last stored bar of IBM is 2013-03-01; the range asked for runs to 2013-06-30\n"
    );
    let inside = dataport(s.addr()).args(["bars", "get", "--symbol", "IBM", "--end", "2013-03-01"]).output();
    assert_eq!(inside.expect("runs").stderr, b"", "no note inside the stored bars");
}

#[test]
fn bars_rm_removes_symbols() {
    let s = BackgroundServer::start();
    let out = stdout_of(
        dataport(s.addr())
            .args(["bars", "import", "--symbol", "acme", "-"])
            .write_stdin("date;open;high;low;close\n2024-01-02;1;2;1;2\n"),
    );
    assert!(out.starts_with("imported 1 bars of ACME"), "{out}");
    assert_eq!(stdout_of(dataport(s.addr()).args(["bars", "rm", "Acme"])), "removed ACME (1 bars)\n");
    let out = dataport(s.addr()).args(["bars", "rm", "ACME"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error: NOT_FOUND: symbol \"ACME\" is not stored")
    );
}

#[test]
fn bars_import_list_and_get() {
    let s = BackgroundServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("acme.csv");
    std::fs::write(
        &file,
        "Date,Open,High,Low,Close,Volume\n2024-01-03,11,12,10,11.5,900\n2024-01-02,10,11,9,10.5,\n",
    )
    .expect("write");
    let out = stdout_of(dataport(s.addr()).args(["bars", "import", "--symbol", "ACME"]).arg(&file));
    assert_eq!(out, "imported 2 bars of ACME; it now holds 2 bars, 2024-01-02 to 2024-01-03\n");
    let out = stdout_of(
        dataport(s.addr())
            .args(["bars", "import", "--symbol", "ACME", "-"])
            .write_stdin("date,open,high,low,close\n2024-01-04,1,2,1,2\n"),
    );
    assert!(out.contains("it now holds 3 bars, 2024-01-02 to 2024-01-04"), "{out}");

    let list = stdout_of(dataport(s.addr()).args(["bars", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("symbol") && lines[0].contains("first"), "{list}");
    assert!(list.lines().any(|l| l.starts_with("ACME") && l.ends_with("no")), "not adjusted: {list}");
    assert!(lines[1].starts_with("AAPL") && lines[1].contains("3270"), "{list}");
    assert!(
        list.lines().any(|l| l.starts_with("ACME") && l.contains("2024-01-02") && l.contains("2024-01-04")),
        "{list}"
    );

    let csv = stdout_of(dataport(s.addr()).args([
        "bars",
        "get",
        "--symbol",
        "ACME",
        "--end",
        "2024-01-03",
        "--format",
        "csv",
    ]));
    assert_eq!(
        csv,
        "date,open,high,low,close,volume\n2024-01-02,10,11,9,10.5,\n2024-01-03,11,12,10,11.5,900\n"
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "date,open,high,low,close\n2024-01-05,1,1,2,1\n").expect("write");
    let out =
        dataport(s.addr()).args(["bars", "import", "--symbol", "ACME"]).arg(&bad).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: INVALID_ARGUMENT: csv: line 2: high 1 is below low 2\n"
    );
    let out = dataport(s.addr())
        .args(["bars", "import", "--symbol", "ACME", "/no/such/file.csv"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: cannot read /no/such/file.csv"));
}

#[test]
fn indicators_print_one_column_per_output() {
    let s = BackgroundServer::start();
    let args = ["indicators", "--symbol", "AAPL", "--start", "2010-01-04", "--end", "2010-01-05", "--raw"];
    let table =
        stdout_of(dataport(s.addr()).args(args).args(["sma:5", "macd", "bollinger:20,2.5", "--wide"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "date",
            "close",
            "sma_5",
            "macd_12_26_9",
            "macd_12_26_9_signal",
            "macd_12_26_9_hist",
            "bollinger_20_2.5_2_upper",
            "bollinger_20_2.5_2_middle",
            "bollinger_20_2.5_2_lower",
        ]
    );
    // TA-Lib's MACD of AAPL at 2010-01-04 is 3.926500332345171 (see the server's market tests).
    assert!(lines[1].starts_with("2010-01-04") && lines[1].contains("3.9265"), "{table}");

    let json = stdout_of(dataport(s.addr()).args([
        "indicators",
        "--symbol",
        "AAPL",
        "--end",
        "2000-03-02",
        "--format",
        "json",
        "rsi",
    ]));
    let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], serde_json::json!({"date": "2000-03-01", "close": 4.186662803811, "rsi_14": null}));

    // The README's example fits 120 columns, and says what it left out.
    let out = dataport(s.addr())
        .args(["indicators", "--symbol", "GOOG", "--start", "2013-01-01", "--end", "2013-01-31"])
        .args(["sma:20", "rsi", "macd:12,26,9", "bollinger:20,2,2", "atr"])
        .output()
        .expect("runs");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().all(|l| l.len() <= 120), "{table}");
    assert!(table.lines().next().is_some_and(|l| l.starts_with("date") && l.contains("close")), "{table}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("note: ") && stderr.contains("atr_14") && stderr.contains("--wide"),
        "{stderr}"
    );

    let out = dataport(s.addr()).args(args).arg("vwap:3").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown indicator \"vwap\""));
    let out = dataport(s.addr()).args(args).arg("sma:0x").output().expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"0x\" in \"sma:0x\" is not a period"));
    let out = dataport(s.addr()).args(args).arg("sma:200000").output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("INVALID_ARGUMENT: indicators[0].sma.period"));
}

#[test]
fn chart_writes_a_png_or_an_svg_file() {
    let s = BackgroundServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let png = dir.path().join("goog.png");
    let range = ["--symbol", "GOOG", "--start", "2012-01-01", "--end", "2012-12-31"];
    let out = dataport(s.addr()).arg("chart").args(range).arg("-o").arg(&png).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&png).expect("written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    // The IHDR chunk holds the width and height, big-endian, at bytes 16..24.
    assert_eq!((&bytes[16..20], &bytes[20..24]), (&1000u32.to_be_bytes()[..], &700u32.to_be_bytes()[..]));

    let svg = dir.path().join("goog.svg");
    let out = dataport(s.addr())
        .arg("chart")
        .args(range)
        .args(["--panels", "price,macd", "-o"])
        .arg(&svg)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(&svg).expect("written").contains("<svg"));

    let out = dataport(s.addr())
        .arg("chart")
        .args(range)
        .args(["--width", "50", "-o"])
        .arg(dir.path().join("x.png"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("error: INVALID_ARGUMENT: width must be 200 to 4000 pixels, not 50")
    );
    assert!(!dir.path().join("x.png").exists());
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "no temporary files are left: {names:?}");
}

#[test]
fn outliers_prints_the_outliers_of_a_csv_file_in_one_batch_or_as_a_stream() {
    let s = BackgroundServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("metrics.csv");
    let mut csv = String::from("time,name,value\n");
    for i in 0..30 {
        let value = if i == 25 { 90.0 } else { 10.0 + f64::from(i % 3) };
        csv.push_str(&format!("2024-05-01T12:00:{i:02}Z,cpu,{value}\n"));
    }
    std::fs::write(&file, &csv).expect("write");

    let out = stdout_of(dataport(s.addr()).arg("outliers").arg(&file).args(["--format", "csv"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "index,time,name,value,score");
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].starts_with("25,2024-05-01T12:00:25"), "{out}");
    assert!(lines[1].contains(",cpu,90,"), "{out}");

    let out = stdout_of(
        dataport(s.addr())
            .args(["outliers", "--stream", "--window", "10", "--format", "json", "-"])
            .write_stdin(csv.clone()),
    );
    let rows: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!((rows[0]["index"].as_f64(), rows[0]["value"].as_f64()), (Some(25.0), Some(90.0)));
    // An index is an integer, in JSON too.
    assert!(out.contains("\"index\":25,"), "{out}");

    let out = stdout_of(dataport(s.addr()).args(["outliers", "--method", "iqr", "-"]).write_stdin(csv));
    assert!(
        out.lines().nth(1).is_some_and(|l| l.trim_start().starts_with("25 2024-05-01T12:00:25Z cpu")),
        "{out}"
    );

    let out = dataport(s.addr())
        .args(["outliers", "-"])
        .write_stdin("time,name,value\n,cpu,1\n,cpu,oops\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: line 3: value \"oops\" is not a finite number\n"
    );
    let out = dataport(s.addr())
        .args(["outliers", "--threshold", "-1", "-"])
        .write_stdin(",cpu,1\n")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error: INVALID_ARGUMENT: method.z_score.threshold")
    );
}

#[test]
fn outliers_stream_flags_a_spike_during_the_warm_up_as_a_batch_does_and_says_so_once() {
    let s = BackgroundServer::start();
    // README: tail -f metrics.csv | dataport outliers --stream --window 100 -
    // Two series; cpu's point 50 (line 102 of the file) is a spike.
    let mut csv = String::from("time,name,value\n");
    for i in 0..60 {
        let cpu = if i == 50 { 95.0 } else { 40.0 + f64::from(i % 4) };
        csv.push_str(&format!("{},cpu,{cpu}\n{},mem,{}\n", 1000 + i, 1000 + i, 70 + i % 3));
    }
    let batch =
        stdout_of(dataport(s.addr()).args(["outliers", "--format", "csv", "-"]).write_stdin(csv.clone()));
    let batch: Vec<&str> = batch.lines().collect();
    assert_eq!(batch.len(), 2, "{batch:?}");
    assert!(batch[1].starts_with("100,") && batch[1].contains(",cpu,95,"), "{batch:?}");

    let out = dataport(s.addr())
        .args(["outliers", "--stream", "--window", "100", "--format", "csv", "-"])
        .write_stdin(csv.clone())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "index,time,name,value,score,warm_up");
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[1].starts_with("100,") && lines[1].contains(",cpu,95,"), "{stdout}");
    assert!(lines[1].ends_with(",true"), "{stdout}");
    // One note for all series, naming the first one read.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "note: series \"cpu\" is warming up: with a window of 100, a series' points 6 to 100 are judged \
         against only the points before them (outliers marked warm_up), and its first 5 points not at all\n"
    );

    // JSON says it as a boolean; once the window is full, warm_up is false.
    let mut csv = String::from("time,name,value\n");
    for i in 0..30 {
        let value = if i == 7 || i == 25 { 90.0 } else { 10.0 + f64::from(i % 3) };
        csv.push_str(&format!(",disk,{value}\n"));
    }
    let out = stdout_of(
        dataport(s.addr())
            .args(["outliers", "--stream", "--window", "10", "--format", "json", "-"])
            .write_stdin(csv),
    );
    let rows: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let got: Vec<_> = rows.iter().map(|r| (r["index"].as_u64(), r["warm_up"].as_bool())).collect();
    assert_eq!(got, [(Some(7), Some(true)), (Some(25), Some(false))], "{out}");
}

#[test]
fn outliers_stream_without_a_warm_up_prints_no_note() {
    let s = BackgroundServer::start();
    // The seed rule needs 5 points to flag anything: a window of 4 has no warm-up.
    let csv: String = (0..12).map(|i| format!(",cpu,{}\n", if i == 9 { 99 } else { i % 2 })).collect();
    let out =
        quietly(dataport(s.addr()).args(["outliers", "--stream", "--window", "4", "-"]).write_stdin(csv));
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.lines().nth(1).is_some_and(|l| l.trim_start().starts_with("9 ") && l.ends_with("false")),
        "{out}"
    );
}

#[test]
fn inputs_that_would_be_silently_misread_are_refused_saying_what_to_do() {
    let s = BackgroundServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let failure = |cmd: &mut Command| {
        let out = cmd.output().expect("runs");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // A chart is PNG or SVG: another extension is not written to.
    let jpg = dir.path().join("x.jpg");
    let range = ["--symbol", "GOOG", "--start", "2012-01-01", "--end", "2012-03-31"];
    let stderr = failure(dataport(s.addr()).arg("chart").args(range).arg("-o").arg(&jpg));
    assert!(
        stderr.contains("a chart is drawn as PNG or SVG, not jpg; name the file .png or .svg"),
        "{stderr}"
    );
    assert!(!jpg.exists());
    // Unless the format is asked for.
    let out = dataport(s.addr()).arg("chart").args(range).args(["--format", "png", "-o"]).arg(&jpg).output();
    assert!(out.expect("runs").status.success());

    // A period or a deviation of 0 would mean "the default" on the wire.
    for spec in ["sma:0", "macd:12,0,9", "bollinger:20,0"] {
        let stderr = failure(dataport(s.addr()).arg("indicators").args(range).arg(spec));
        assert!(stderr.contains("leave it out for TA-Lib's default"), "{spec}: {stderr}");
    }

    // A metrics header that names other columns names the expected ones.
    let stderr =
        failure(dataport(s.addr()).args(["outliers", "-"]).write_stdin("timestamp,host,cpu\n1,a,2\n"));
    assert_eq!(
        stderr,
        "error: line 1: expected a header with time,name,value (any order), or none; found: timestamp,host,cpu\n"
    );
}

/// A data directory as a running server keeps it: both stores made, and
/// its lock held until the answer is dropped.
fn served_data_dir(data: &std::path::Path) -> dataport_store::DataDir {
    let held = dataport_store::DataDir::open(data).expect("data dir");
    dataport_store::files::LocalFileStore::open(data).expect("file store");
    dataport_store::bars::SqliteBarStore::open(data).expect("bar store");
    held
}

#[test]
fn fsck_reports_leftovers_repairs_them_and_refuses_a_data_dir_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // A data dir as a server leaves it, then a crash's leftover.
    drop(served_data_dir(&data));
    let run = |extra: &[&str]| {
        let mut cmd = Command::cargo_bin("dataport").expect("binary");
        cmd.arg("fsck").arg(&data).args(extra).output().expect("runs")
    };
    // A test beside this one may be starting a process: until that child
    // execs, it shares this process's open files, the dropped lock's too.
    let fsck = |extra: &[&str]| {
        for _ in 0..100 {
            let out = run(extra);
            if !(out.status.code() == Some(2) && String::from_utf8_lossy(&out.stderr).contains("in use")) {
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        run(extra)
    };
    let clean = fsck(&[]);
    assert_eq!(clean.status.code(), Some(0), "{clean:?}");
    let out = String::from_utf8_lossy(&clean.stdout).into_owned();
    assert!(out.contains("files: 0 stored (0 bytes) checked, 0 damaged, 0 left over"), "{out}");
    assert!(out.contains("bars: the database is sound"), "{out}");

    let leftover = data.join("files/.tmp/crashed-upload");
    std::fs::write(&leftover, b"half").expect("write");
    let found = fsck(&[]);
    assert_eq!(found.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&found.stdout).contains("not in the index:"));
    assert!(leftover.exists(), "a check alone removes nothing");
    let repaired = fsck(&["--repair"]);
    assert_eq!(repaired.status.code(), Some(0), "{repaired:?}");
    assert!(!leftover.exists());

    let _server = dataport_store::DataDir::open(&data).expect("the lock, as a running server holds it");
    let busy = run(&[]);
    assert_eq!(busy.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(stderr.starts_with("error: ") && stderr.contains(&data.display().to_string()), "{stderr}");
}

#[test]
fn fsck_of_a_data_dir_whose_bars_are_elsewhere_makes_no_bar_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    {
        let _held = dataport_store::DataDir::open(&data).expect("data dir");
        dataport_store::files::LocalFileStore::open(&data).expect("file store");
    }
    let out = Command::cargo_bin("dataport").expect("binary").arg("fsck").arg(&data).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text.contains("bars: none in this directory (kept in PostgreSQL, or never imported)"), "{text}");
    assert!(!data.join(dataport_store::bars::SqliteBarStore::FILE).exists());
}

#[test]
fn backup_then_restore_gives_data_dirs_that_fsck_finds_sound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let _server = served_data_dir(&data);
    let run = |args: &[&std::path::Path]| {
        let mut cmd = Command::cargo_bin("dataport").expect("binary");
        cmd.args(args.iter().map(|a| a.as_os_str()));
        cmd.output().expect("runs")
    };
    let (copy, restored) = (dir.path().join("backup"), dir.path().join("restored"));
    let backed = run(&["backup".as_ref(), &data, &copy]);
    assert_eq!(backed.status.code(), Some(0), "{backed:?}");
    assert!(String::from_utf8_lossy(&backed.stdout).starts_with("backed up into "), "{backed:?}");
    let again = run(&["backup".as_ref(), &data, &copy]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"), "{again:?}");
    assert_eq!(run(&["restore".as_ref(), &copy, &restored]).status.code(), Some(0));
    for sound in [&copy, &restored] {
        assert_eq!(run(&["fsck".as_ref(), sound]).status.code(), Some(0));
    }
}
