//! `dataport serve` as a process: configuration errors, the start line, one
//! log line per call, and a clean exit on SIGTERM.

use std::process::Command;

use dataport_testkit::cli::{Served, serve};

/// Runs a serve command expected to refuse its settings; returns stderr.
fn refused(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn bad_settings_exit_2_with_one_line_naming_key_value_and_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let e = refused(serve().args(["--listen", "localhost"]).arg("--data-dir").arg(&data));
    assert!(e.contains("listen = \"localhost\" (from --listen)"), "{e}");
    let e = refused(serve().env("DATAPORT_LOG_FORMAT", "xml").arg("--data-dir").arg(&data));
    assert!(e.contains("log_format = \"xml\" (from DATAPORT_LOG_FORMAT)"), "{e}");
    let e = refused(serve().args(["--shutdown-timeout", "soon"]).arg("--data-dir").arg(&data));
    assert!(e.contains("shutdown_timeout = \"soon\""), "{e}");
    let e = refused(serve().args(["--features", "/no/such/features.json"]).arg("--data-dir").arg(&data));
    assert!(e.contains("features = \"/no/such/features.json\"") && e.contains("cannot read"), "{e}");

    let config = dir.path().join("dataport.toml");
    std::fs::write(&config, "max_entities = 0\n").expect("write");
    let e = refused(serve().arg("--config").arg(&config).arg("--data-dir").arg(&data));
    assert!(e.contains("max_entities = \"0\" (from ") && e.contains("dataport.toml"), "{e}");
    let e = refused(serve().env("DATAPORT_CONFIG", dir.path().join("absent.toml")));
    assert!(e.contains("absent.toml"), "{e}");
    // None of these started a server, so none created the data dir.
    assert!(!data.exists());
}

#[test]
fn settings_are_checked_before_the_port_is_bound() {
    // Hold the port: a server that bound before checking would report the
    // port as taken instead of the bad setting.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("addr").to_string();
    let e = refused(serve().args(["--listen", &addr, "--log-format", "yaml"]));
    assert!(e.contains("log_format = \"yaml\""), "{e}");
    let dir = tempfile::tempdir().expect("tempdir");
    let e = refused(serve().args(["--listen", &addr]).arg("--data-dir").arg(dir.path()));
    assert!(e.contains(&format!("listen = \"{addr}\": cannot bind")), "{e}");
}

#[test]
fn new_keys_refuse_bad_values_naming_key_value_and_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let e = refused(serve().args(["--max-message-size", "0"]).arg("--data-dir").arg(&data));
    assert_eq!(
        e.trim_end(),
        "dataport serve: max_message_size = \"0\" (from --max-message-size): expected a size of at least 1 byte: bytes, or a number with KiB, MiB or GiB"
    );
    let e = refused(serve().env("DATAPORT_RESPONSE_COMPRESSION", "brotli").arg("--data-dir").arg(&data));
    assert_eq!(
        e.trim_end(),
        "dataport serve: response_compression = \"brotli\" (from DATAPORT_RESPONSE_COMPRESSION): expected `none`, `gzip` or `zstd`"
    );
    let config = dir.path().join("dataport.toml");
    std::fs::write(&config, "response_compression = \"gzip\"\nmax_message_size = \"4MB\"\n").expect("write");
    let e = refused(serve().arg("--config").arg(&config).arg("--data-dir").arg(&data));
    assert!(e.contains(&format!("max_message_size = \"4MB\" (from {})", config.display())), "{e}");
    // A flag overrides the file's bad value; the environment's is then refused.
    let e = refused(
        serve()
            .env("DATAPORT_CONFIG", &config)
            .env("DATAPORT_RESPONSE_COMPRESSION", "lz4")
            .args(["--max-message-size", "1MiB"])
            .arg("--data-dir")
            .arg(&data),
    );
    assert!(e.contains("response_compression = \"lz4\" (from DATAPORT_RESPONSE_COMPRESSION)"), "{e}");
    assert!(!data.exists());
}

#[test]
fn new_keys_layer_flag_over_env_over_file() {
    // Each bad value is hidden by a good one from a stronger source, so the
    // settings pass only if the layers are applied in that order; the server
    // then stops at the port held here, which it binds only after every
    // setting passed.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("dataport.toml");
    std::fs::write(&config, "response_compression = \"brotli\"\nmax_message_size = 0\n").expect("write");
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("addr").to_string();
    let e = refused(
        serve()
            .env("DATAPORT_RESPONSE_COMPRESSION", "gzip")
            .env("DATAPORT_MAX_MESSAGE_SIZE", "0")
            .arg("--config")
            .arg(&config)
            .args(["--max-message-size", "8MiB", "--listen", &addr])
            .arg("--data-dir")
            .arg(dir.path().join("data")),
    );
    assert!(e.contains(&format!("listen = \"{addr}\": cannot bind")), "{e}");
}

#[test]
fn serve_help_lists_every_declared_setting() {
    let out = serve().arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = help.lines().collect();
    for setting in dataport_server::config::SETTINGS {
        let at = lines
            .iter()
            .position(|l| {
                let flag = format!("--{}", setting.flag_name());
                l.trim_start().split(' ').next() == Some(flag.as_str())
            })
            .unwrap_or_else(|| panic!("no --{} in:\n{help}", setting.flag_name()));
        // clap puts the help beside the flag, or on the next line when the
        // longest flag leaves too little room.
        let line = match lines.get(at + 1) {
            Some(next) if !next.trim_start().starts_with('-') => format!("{} {}", lines[at], next.trim()),
            _ => lines[at].to_owned(),
        };
        assert!(line.contains(setting.doc()) && line.contains(&setting.env_var()), "{line}");
        if let dataport_server::config::Flag::Value(_) = setting.flag {
            let (dataport_server::config::Shown::Value(default)
            | dataport_server::config::Shown::Unset(default)) = setting.default;
            assert!(line.contains(&format!("[default: {default}]")), "{line}");
        }
    }
}

/// Starts `dataport serve` on an ephemeral port and reads its address from
/// the JSON start line.
fn start(extra: &[&str], data_dir: &std::path::Path) -> Served {
    Served::start("info", extra, data_dir)
}

#[test]
fn serve_logs_each_call_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("new/data");
    let served = start(&[], &data);
    assert!(data.is_dir(), "the data dir is created");

    assert!(served.client().args(["hello", "log"]).output().expect("runs").status.success());
    assert!(
        !served
            .client()
            .args(["position", "get", "--entity", "ghost"])
            .output()
            .expect("runs")
            .status
            .success()
    );

    let calls = served.calls(2);
    assert_eq!(calls[0]["method"], "/helloworld.Greeter/SayHello");
    assert_eq!(calls[0]["code"], "OK");
    assert!(calls[0]["duration_us"].is_u64());
    assert_eq!(calls[1]["method"], "/dataport.position.v1.PositionService/Get");
    assert_eq!(calls[1]["code"], "NOT_FOUND");
    assert_eq!(calls[1]["message"], "entity \"ghost\" has never been published");

    let (code, rest) = served.terminate();
    assert_eq!(code, Some(0));
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
}

#[test]
fn rust_log_can_turn_the_call_lines_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = Served::start("info,dataport::call=off", &[], dir.path());
    assert!(served.client().args(["hello", "quiet"]).output().expect("runs").status.success());
    let (code, rest) = served.terminate();
    assert_eq!(code, Some(0));
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
    assert!(!rest.iter().any(|l| l.contains("dataport::call")), "{rest:?}");
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = start(&[], dir.path());
    let e = refused(serve().args(["--listen", "127.0.0.1:0"]).arg("--data-dir").arg(dir.path()));
    assert!(e.contains("in use by another dataport server"), "{e}");
    assert_eq!(first.terminate().0, Some(0));
}

#[test]
fn simulate_orbit_moves_the_default_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = start(&["--simulate-orbit"], dir.path());
    let out = served.client().args(["position", "watch", "default", "--count", "3"]).output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let revisions: Vec<u64> = text
        .lines()
        .map(|l| {
            l.split("revision=")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|r| r.parse().ok())
                .expect("revision")
        })
        .collect();
    assert_eq!(revisions.len(), 3);
    assert!(revisions.windows(2).all(|w| w[1] > w[0]), "{text}");
    for line in text.lines() {
        let coord = |name: &str| -> f64 {
            line.split(&format!(" {name}="))
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|v| v.parse().ok())
                .expect("coord")
        };
        assert!((coord("x").hypot(coord("y")) - 1.0).abs() < 1e-9, "{line}");
    }
    assert_eq!(served.terminate().0, Some(0));
}
