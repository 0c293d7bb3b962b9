//! The client commands, run as a user runs them: the built binary against a
//! real server started in this process on an ephemeral port.

use std::net::SocketAddr;

use assert_cmd::Command;
use dataport_server::Server;
use dataport_server::config::Config;

struct Running {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start_server() -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config { data_dir: dir.path().join("data"), ..Config::default() };
    let server = Server::new(config).expect("starts");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    runtime.spawn(server.run(listener, std::future::pending()));
    Running { addr, _runtime: runtime, _dir: dir }
}

fn dataport(server: &Running) -> Command {
    let mut cmd = Command::cargo_bin("dataport").expect("binary");
    cmd.env_remove("DATAPORT_SERVER").arg("--server").arg(format!("http://{}", server.addr));
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn hello_prints_the_greeting() {
    let s = start_server();
    assert_eq!(stdout_of(dataport(&s).args(["hello", "world"])), "Hello, world!\n");
    assert_eq!(stdout_of(dataport(&s).args(["hello", "--again", "world"])), "Hello again, world!\n");
}

#[test]
fn server_can_come_from_the_environment_without_a_scheme() {
    let s = start_server();
    let mut cmd = Command::cargo_bin("dataport").expect("binary");
    cmd.env("DATAPORT_SERVER", s.addr.to_string()).args(["hello", "env"]);
    assert_eq!(stdout_of(&mut cmd), "Hello, env!\n");
}

#[test]
fn route_commands_print_features_and_summaries() {
    let s = start_server();
    let out = stdout_of(dataport(&s).args(["route", "feature", "488583701", "22944813"]));
    assert_eq!(out, "Eiffel Tower, Paris, France at 48.8583701, 2.2944813 (488583701, 22944813)\n");
    let out = stdout_of(dataport(&s).args(["route", "feature", "-1", "-2"]));
    assert!(out.starts_with("(no feature) at"), "{out}");

    let out =
        stdout_of(dataport(&s).args(["route", "list", "525162746", "133777041", "488583701", "22944813"]));
    assert_eq!(out.lines().count(), 3, "{out}");

    let out = stdout_of(dataport(&s).args(["route", "record", "488583701,22944813", "525162746,133777041"]));
    assert_eq!(out, "2 points, 2 features, 879088 m, 0 s\n");
    let out = stdout_of(dataport(&s).args(["route", "record"]).write_stdin("488583701,22944813\n\n1,1\n"));
    assert_eq!(out, "2 points, 1 features, 5437263 m, 0 s\n");

    let out = stdout_of(dataport(&s).args(["route", "chat", "1,1:a", "2,2:b", "1,1:c"]));
    assert_eq!(out, "0.0000001, 0.0000001 (1, 1): a\n");
}

#[test]
fn position_commands_publish_get_and_watch() {
    let s = start_server();
    let out = stdout_of(dataport(&s).args(["position", "get"]));
    assert!(out.starts_with("default x=1 y=0 z=0 revision=0"), "{out}");

    // Start a watcher, then publish until it has printed what it was asked for.
    let watcher = std::process::Command::new(assert_cmd::cargo::cargo_bin("dataport"))
        .args(["--server", &format!("http://{}", s.addr), "position", "watch", "drone", "--count", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let out = stdout_of(dataport(&s).args(["position", "pub", "--entity", "drone", "1.5", "-2", "3"]));
    assert!(out.starts_with("drone x=1.5 y=-2 z=3 revision=1"), "{out}");
    // The watcher may have registered after that publish; keep publishing
    // until it prints and exits, which it does after one position.
    let mut watcher = watcher;
    for _ in 0..200 {
        if watcher.try_wait().expect("status").is_some() {
            break;
        }
        stdout_of(dataport(&s).args(["position", "pub", "--entity", "drone", "1.5", "-2", "3"]));
    }
    let out = watcher.wait_with_output().expect("exits");
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    assert!(printed.starts_with("drone x=1.5 y=-2 z=3 revision="), "{printed}");
}

#[test]
fn failures_print_the_status_and_exit_non_zero() {
    let s = start_server();
    let out = dataport(&s).args(["position", "get", "--entity", "ghost"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: NOT_FOUND: entity \"ghost\" has never been published\n"
    );
    assert!(out.stdout.is_empty());

    let out = dataport(&s).args(["route", "feature", "900000001", "0"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: INVALID_ARGUMENT: point: latitude 900000001"), "{stderr}");

    let out = dataport(&s).args(["position", "pub", "nan", "0", "0"]).output().expect("runs");
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
}

#[test]
fn macd_prints_a_table_csv_or_json_lines() {
    let s = start_server();
    let range = ["--symbol", "AAPL", "--start", "2010-01-04", "--end", "2010-01-05"];
    let table = stdout_of(dataport(&s).arg("macd").args(range));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("date") && lines[0].ends_with("histogram"), "{table}");
    assert!(
        lines[1].starts_with("2010-01-04") && lines[1].contains("214.01") && lines[1].contains("3.9265"),
        "{table}"
    );

    let csv = stdout_of(dataport(&s).arg("macd").args(range).args(["--format", "csv"]));
    assert_eq!(csv.lines().next(), Some("date,open,high,low,close,macd,signal,histogram"));
    assert!(csv.lines().nth(2).is_some_and(|l| l.starts_with("2010-01-05,214.6,")), "{csv}");

    let json = stdout_of(dataport(&s).arg("macd").args(range).args(["--format", "json"]));
    let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["date"], "2010-01-05");

    let out = dataport(&s).args(["macd", "--start", "2010-01-04", "--end", "2010-01-05"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: INVALID_ARGUMENT: symbol is empty")
            && stderr.contains("AAPL, GOOG, IBM, MSFT"),
        "{stderr}"
    );
}
