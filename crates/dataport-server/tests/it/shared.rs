//! A server whose bars and positions are in PostgreSQL (`bars_url`), reached
//! through a relay the test cuts and restores as a network would: health
//! says NOT_SERVING while the database cannot be reached, calls that need it
//! are UNAVAILABLE, both come back by themselves, and what another replica
//! published meanwhile reaches the watchers once the replica is back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use dataport_proto::dataport::position::v1::position_service_client::PositionServiceClient;
use dataport_proto::dataport::position::v1::{PublishRequest, Vector3, WatchRequest};
use dataport_proto::grpc::health::v1::HealthCheckRequest;
use dataport_proto::grpc::health::v1::health_check_response::ServingStatus;
use dataport_proto::grpc::health::v1::health_client::HealthClient;
use dataport_proto::idc::MacdRequest;
use dataport_proto::idc::indicator_client::IndicatorClient;
use dataport_server::config::RawSettings;
use tonic::Code;

use crate::common::{config, start_with};

/// Forwards every connection to `to` while up; cut, it closes the ones open
/// and every new one at once.
struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn to(to: SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let (up, open) = (Arc::new(AtomicBool::new(true)), Arc::new(Mutex::new(Vec::new())));
        let (up_, open_) = (Arc::clone(&up), Arc::clone(&open));
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up_.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let task = tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(to).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                open_.lock().expect("relay lock").push(task.abort_handle());
            }
        });
        Relay { addr, up, open }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for task in self.open.lock().expect("relay lock").drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// A new database on `DATAPORT_TEST_POSTGRES` (`postgres://USER@HOST:PORT`):
/// the server's address and the database's name.
async fn database() -> (SocketAddr, String, String) {
    let server = std::env::var("DATAPORT_TEST_POSTGRES")
        .expect("DATAPORT_TEST_POSTGRES: a PostgreSQL server to test against (tests/run starts one)");
    let (client, connection) = tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    let name = format!("server_{}", std::process::id());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("creates a database");
    let (user, host) = server.trim_start_matches("postgres://").split_once('@').expect("USER@HOST:PORT");
    (host.parse().expect("HOST:PORT"), user.to_owned(), name)
}

async fn health(addr: &str) -> Option<i32> {
    let mut client = HealthClient::connect(addr.to_owned()).await.ok()?;
    Some(client.check(HealthCheckRequest { service: String::new() }).await.ok()?.into_inner().status)
}

/// A server (sample bars loaded) keeping bars and positions at `bars_url`.
async fn serve(bars_url: String) -> crate::common::TestServer {
    let (mut config, data_dir) = config();
    let mut raw = RawSettings::default();
    raw.set_flag("bars_url", bars_url);
    config.bars_url = raw.resolve().expect("a PostgreSQL URL").bars_url;
    config.sample_data = true;
    start_with(config, data_dir).await
}

/// Waits until health answers `want`, for at most 10 s.
async fn until_health(addr: &str, want: ServingStatus) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while health(addr).await != Some(want as i32) {
        assert!(tokio::time::Instant::now() < deadline, "health never said {want:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

// Two threads: the relay runs here, and starting the server blocks one
// thread while it reaches the database through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
async fn an_unreachable_database_is_not_serving_and_unavailable_until_it_is_back_then_resyncs() {
    let (postgres, user, name) = database().await;
    let relay = Relay::to(postgres).await;
    let server = serve(format!("postgres://{user}:secret@{}/{name}", relay.addr)).await;
    // Another replica, whose way to the database is never cut.
    let other = serve(format!("postgres://{user}@{postgres}/{name}")).await;
    let url = server.url();
    let request =
        MacdRequest { symbol: "AAPL".into(), start_date: "2012-01-03".into(), end_date: "2012-01-31".into() };
    let mut macd = IndicatorClient::new(server.channel().await);
    assert_eq!(health(&url).await, Some(ServingStatus::Serving as i32));
    assert!(!macd.get_macd(request.clone()).await.expect("answered").into_inner().macd.is_empty());

    let mut watch = PositionServiceClient::new(server.channel().await)
        .watch(WatchRequest { entities: vec!["drone".into()] })
        .await
        .expect("watching")
        .into_inner();

    relay.cut();
    until_health(&url, ServingStatus::NotServing).await;
    // Published through the other replica while this one cannot hear it.
    let position = Vector3 { x: 7.0, y: 8.0, z: 9.0 };
    PositionServiceClient::new(other.channel().await)
        .publish(PublishRequest { entity: "drone".into(), position: Some(position) })
        .await
        .expect("published");
    let refused = macd.get_macd(request.clone()).await.expect_err("the database is cut off");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("is unreachable") && !refused.message().contains("secret"),
        "{refused:?}"
    );

    relay.restore();
    until_health(&url, ServingStatus::Serving).await;
    assert!(!macd.get_macd(request).await.expect("answered again").into_inner().macd.is_empty());
    // Back on the bus, the replica read what it missed: its watcher has it.
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), watch.message())
        .await
        .expect("the watcher heard the missed publish")
        .expect("a message")
        .expect("not the end");
    assert_eq!(heard.position.and_then(|p| p.position), Some(position));
    server.stop().await;
    other.stop().await;
}
