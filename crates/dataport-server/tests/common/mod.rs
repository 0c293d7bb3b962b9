//! Starts a real server on an ephemeral port for a test: the listener is
//! bound before the server task starts, so calls can be made at once.

#![allow(dead_code)] // each test binary uses its own subset

pub mod files;

use std::net::SocketAddr;
use std::time::Duration;

use dataport_server::config::Config;
use dataport_server::{ServeError, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
    _data_dir: tempfile::TempDir,
}

/// A config with a fresh data dir and a short shutdown deadline.
pub fn config() -> (Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().join("data"),
        shutdown_timeout: Duration::from_secs(5),
        // Only the market tests need bars; they turn the sample back on.
        sample_data: false,
        ..Config::default()
    };
    (config, dir)
}

pub async fn start() -> TestServer {
    let (config, dir) = config();
    start_with(config, dir).await
}

pub async fn start_with(config: Config, data_dir: tempfile::TempDir) -> TestServer {
    let server = Server::new(config).expect("server starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(server.run(listener, async {
        let _ = rx.await;
    }));
    TestServer { addr, shutdown: Some(tx), task, _data_dir: data_dir }
}

impl TestServer {
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).expect("uri").connect().await.expect("connects")
    }

    /// Sends the shutdown signal without waiting.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Signals shutdown and waits for the server to stop, with a bound.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        self.signal_shutdown();
        tokio::time::timeout(Duration::from_secs(20), self.task)
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
