//! Dataport's test harness, for integration tests only (a dev-dependency,
//! never published): a real server in the test's process on a listener bound
//! to port 0 before the server starts, so calls can be made at once; the
//! `dataport` binary run as a user runs it, against that server or as
//! `dataport serve` in a process of its own that announces its address; and
//! the test data the file tests share.
//!
//! It must never wait for something by sleeping: every wait here is for an
//! event (a bound listener, the server's start line, a call-log line, the end
//! of a task) with a generous bound that only a broken server reaches.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dataport_server::Server;
use dataport_server::config::Config;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// How long a wait for an event may take before the test fails: far longer
/// than any healthy server needs, so only a broken one reaches it.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A config with a fresh data dir, no sample bars (the market tests turn
/// them back on) and a short shutdown deadline; the dir lives as long as the
/// returned guard.
pub fn config() -> (Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().join("data"),
        shutdown_timeout: Duration::from_secs(5),
        sample_data: false,
        ..Config::default()
    };
    (config, dir)
}

/// A server running in this process on an ephemeral loopback port.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, with `metrics_listen`.
    pub metrics: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    _data_dir: tempfile::TempDir,
}

/// Starts a server with [`config`] on the current tokio runtime.
pub async fn start() -> TestServer {
    let (config, dir) = config();
    start_with(config, dir).await
}

/// Starts a server with `config` on the current tokio runtime. The listener
/// is bound before the server task starts, so the server accepts at once.
pub async fn start_with(config: Config, data_dir: tempfile::TempDir) -> TestServer {
    let server = Server::new(config).expect("server starts");
    let metrics = server.metrics_addr();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(server.run(listener, async {
        let _ = rx.await;
    }));
    TestServer { addr, metrics, shutdown: Some(tx), task, _data_dir: data_dir }
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url()).expect("uri").connect().await.expect("connects")
    }

    /// Sends the shutdown signal without waiting.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Signals shutdown and waits for the server to stop (within
    /// [`EVENT_TIMEOUT`]).
    pub async fn stop(mut self) {
        self.signal_shutdown();
        tokio::time::timeout(EVENT_TIMEOUT, self.task)
            .await
            .expect("server stops in time")
            .expect("server task joins")
    }
}

/// Asserts that `result` failed with `code` and a message containing every
/// one of `parts`.
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    parts: &[&str],
) {
    let status = result.expect_err("call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    for part in parts {
        assert!(status.message().contains(part), "{:?} should mention {part:?}", status.message());
    }
}

/// How often [`until`] looks again.
const POLL: Duration = Duration::from_millis(10);

/// Waits until `done()` holds: for state a test can only look at (files on
/// disk), never for a guessed time. Fails naming `what` after
/// [`EVENT_TIMEOUT`].
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {EVENT_TIMEOUT:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// [`until`] for tests that are not async.
pub fn until_blocking(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}: not within {EVENT_TIMEOUT:?}");
        std::thread::sleep(POLL);
    }
}

/// A server for tests that are not async themselves (the CLI's): it runs on
/// a runtime of its own until dropped.
#[derive(Debug)]
pub struct BackgroundServer {
    pub server: TestServer,
    pub runtime: tokio::runtime::Runtime,
}

impl BackgroundServer {
    /// A server with the default config (sample bars included) on a fresh
    /// data dir.
    pub fn start() -> BackgroundServer {
        let (mut config, dir) = config();
        config.sample_data = true;
        Self::start_with(config, dir)
    }

    pub fn start_with(config: Config, data_dir: tempfile::TempDir) -> BackgroundServer {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let server = runtime.block_on(start_with(config, data_dir));
        BackgroundServer { server, runtime }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

/// The `dataport` binary of this build, run as a user runs it.
pub mod certs;

pub mod cli {
    use super::*;

    /// `dataport` with `--server` naming `addr`, and no `DATAPORT_SERVER`
    /// from the environment of the test run.
    pub fn dataport(addr: SocketAddr) -> assert_cmd::Command {
        let mut cmd = bare();
        cmd.env_remove("DATAPORT_SERVER").arg("--server").arg(format!("http://{addr}"));
        cmd
    }

    /// `dataport` with no arguments and the environment of the test run.
    pub fn bare() -> assert_cmd::Command {
        assert_cmd::Command::new(binary())
    }

    /// Where the `dataport` binary is (the crate's integration tests build it).
    pub fn binary() -> PathBuf {
        assert_cmd::cargo::cargo_bin("dataport")
    }

    /// Runs a command that must succeed, and answers its stdout.
    pub fn stdout_of(cmd: &mut assert_cmd::Command) -> String {
        let out = cmd.output().expect("runs");
        assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Runs a command that must succeed with nothing on stderr (not on a
    /// terminal, nothing but errors goes there), and answers its stdout.
    pub fn quietly(cmd: &mut assert_cmd::Command) -> String {
        let out = cmd.output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "failed: {stderr}");
        assert_eq!(stderr, "", "not on a terminal, nothing but errors goes to stderr");
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Runs a command that must fail with exit code 1, and answers its stderr.
    pub fn failing(cmd: &mut assert_cmd::Command) -> String {
        let out = cmd.output().expect("runs");
        assert_eq!(out.status.code(), Some(1), "stdout: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8(out.stderr).expect("utf-8")
    }

    /// `dataport serve` with no `DATAPORT_*` variable from the environment of
    /// the test run.
    pub fn serve() -> std::process::Command {
        let mut cmd = std::process::Command::new(binary());
        cmd.arg("serve");
        for (key, _) in std::env::vars() {
            if key.starts_with("DATAPORT_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// `dataport serve` as a process of its own on an ephemeral port, with
    /// JSON logs, its stdout read line by line.
    #[derive(Debug)]
    pub struct Served {
        pub child: Child,
        /// The address from its "listening" line.
        pub addr: String,
        /// Every stdout line after the "listening" one.
        pub lines: mpsc::Receiver<String>,
    }

    impl Served {
        /// Starts it with `RUST_LOG=rust_log` and `extra` flags on
        /// `data_dir`, and waits for its "listening" line.
        pub fn start(rust_log: &str, extra: &[&str], data_dir: &Path) -> Served {
            let mut child = serve()
                .env("RUST_LOG", rust_log)
                .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
                .arg("--data-dir")
                .arg(data_dir)
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawns");
            let stdout = child.stdout.take().expect("stdout");
            let (tx, lines) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            // Start-up lines (migrations, the sample bars) come first, then this one.
            let start = loop {
                let line = lines.recv_timeout(EVENT_TIMEOUT).expect("a start line");
                let v: serde_json::Value = serde_json::from_str(&line).expect("every line is JSON");
                if v["fields"]["message"] == "listening" {
                    break v;
                }
            };
            assert_eq!(start["fields"]["data_dir"], data_dir.display().to_string());
            let addr = start["fields"]["addr"].as_str().expect("addr").to_owned();
            Served { child, addr, lines }
        }

        /// `dataport` with `--server` naming this server.
        pub fn client(&self) -> assert_cmd::Command {
            let mut cmd = bare();
            cmd.env_remove("DATAPORT_SERVER").arg("--server").arg(&self.addr);
            cmd
        }

        /// The fields of the next `n` call-log lines (target
        /// `dataport::call`), each awaited within [`EVENT_TIMEOUT`].
        pub fn calls(&self, n: usize) -> Vec<serde_json::Value> {
            let mut calls = Vec::new();
            while calls.len() < n {
                let line = self.lines.recv_timeout(EVENT_TIMEOUT).expect("a call line");
                let v: serde_json::Value = serde_json::from_str(&line).expect("json");
                if v["target"] == "dataport::call" {
                    calls.push(v["fields"].clone());
                }
            }
            calls
        }

        /// Sends SIGTERM and answers the exit code and every line written
        /// after the ones already read.
        pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .expect("kill runs");
            assert!(status.success());
            let code = self.child.wait().expect("exits").code();
            (code, self.lines.iter().collect())
        }
    }

    /// A server a test did not terminate (it ended early, or needs no exit
    /// code) is killed, so no test leaves a process behind.
    impl Drop for Served {
        fn drop(&mut self) {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Test data and digests.
pub mod data {
    use super::*;

    /// Deterministic bytes that do not repeat in any short period (a xorshift
    /// sequence from `seed`).
    pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    pub fn hex_sha256(data: &[u8]) -> String {
        Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
    }
}
