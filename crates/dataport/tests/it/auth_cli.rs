//! Tokens from `dataport token new`, used by the client commands against a
//! `dataport serve` with auth_tokens: call lines name the caller and never
//! hold the secret.

use dataport_testkit::cli::{Served, bare, failing, stdout_of};

#[test]
fn a_new_token_lets_its_holder_in_and_only_its_name_is_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = stdout_of(bare().args(["token", "new", "collector", "--scope", "greeter:read,market:read"]));
    let secret = out.lines().nth(1).expect("the secret line").to_owned();
    let entry = out.split_once("changes):\n").expect("the entry").1;
    let file = dir.path().join("tokens.toml");
    std::fs::write(&file, entry).expect("write");

    let served =
        Served::start("info", &["--auth-tokens", file.to_str().expect("utf-8")], &dir.path().join("data"));
    let mut with = served.client();
    assert_eq!(stdout_of(with.args(["--token", &secret, "hello", "x"])), "Hello, x!\n");
    let mut from_env = served.client();
    assert_eq!(stdout_of(from_env.env("DATAPORT_TOKEN", &secret).args(["hello", "y"])), "Hello, y!\n");
    let stderr = failing(served.client().args(["hello", "z"]));
    assert!(stderr.starts_with("error: UNAUTHENTICATED: this server needs a token"), "{stderr}");
    let stderr = failing(served.client().args(["--token", &secret, "bars", "rm", "AAPL"]));
    assert!(
        stderr.contains("PERMISSION_DENIED: collector may not call") && stderr.contains("market:write"),
        "{stderr}"
    );

    let calls = served.calls(4);
    let callers: Vec<&str> = calls.iter().map(|c| c["caller"].as_str().expect("a caller")).collect();
    assert_eq!(callers, ["collector", "collector", "anonymous", "collector"]);
    let (_, lines) = served.terminate();
    let logged = calls.iter().map(ToString::to_string).chain(lines).collect::<Vec<_>>().join("\n");
    assert!(!logged.contains(&secret) && !logged.contains(&secret[3..]), "the secret was logged");
}

#[test]
fn token_new_refuses_bad_names_and_scopes() {
    let out = bare().args(["token", "new", "a b", "--scope", "greeter:read"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let out = bare().args(["token", "new", "ok", "--scope", "greeter:admin"]).output().expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("scope \"greeter:admin\" is not AREA:ACCESS"));
}

#[test]
fn every_write_gets_an_audit_line_naming_caller_object_and_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = stdout_of(bare().args(["token", "new", "ops", "--scope", "files:write,market:read"]));
    let secret = out.lines().nth(1).expect("the secret line").to_owned();
    let file = dir.path().join("tokens.toml");
    std::fs::write(&file, out.split_once("changes):\n").expect("the entry").1).expect("write");
    let served =
        Served::start("info", &["--auth-tokens", file.to_str().expect("utf-8")], &dir.path().join("data"));

    let report = dir.path().join("report.txt");
    std::fs::write(&report, "quarterly numbers").expect("write");
    stdout_of(served.client().args(["--token", &secret, "upload"]).arg(&report));
    failing(served.client().args(["--token", &secret, "files", "rm", "missing.txt"]));
    failing(served.client().args(["--token", &secret, "bars", "rm", "AAPL"]));
    stdout_of(served.client().args(["--token", &secret, "bars", "list"]));

    let mut audits = Vec::new();
    while audits.len() < 3 {
        let line = served.lines.recv_timeout(dataport_testkit::EVENT_TIMEOUT).expect("an audit line");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        if v["target"] == "dataport::audit" {
            let f = &v["fields"];
            audits.push(
                [&f["caller"], &f["method"], &f["object"], &f["outcome"]]
                    .map(|x| x.as_str().unwrap_or("").to_owned()),
            );
        }
    }
    assert_eq!(
        audits,
        [
            ["ops", "/dataport.files.v1.FilesService/Upload", "report.txt", "OK"],
            ["ops", "/dataport.files.v1.FilesService/Delete", "missing.txt", "NOT_FOUND"],
            ["ops", "/dataport.market.v1.MarketService/DeleteSymbol", "-", "PERMISSION_DENIED"],
        ]
        .map(|a| a.map(str::to_owned))
    );
    let (_, rest) = served.terminate();
    assert!(!rest.iter().any(|l| l.contains("dataport::audit")), "reads get no audit line: {rest:?}");
}
