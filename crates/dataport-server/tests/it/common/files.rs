//! What the file tests share: test data in odd pieces, what the store holds
//! on disk, and a connection that can be cut (the data and digests come from
//! dataport-testkit).

use std::path::{Path, PathBuf};

use dataport_server::config::Config;
use dataport_testkit::TestServer;
pub use dataport_testkit::data::{bytes, hex_sha256};
use tonic::transport::Channel;

/// A server with `configure`'s settings, a client of it made by `client`,
/// and where the server keeps its files.
pub async fn serve<C>(
    configure: impl FnOnce(&mut Config),
    client: impl FnOnce(Channel) -> C,
) -> (TestServer, C, PathBuf) {
    let (mut config, dir) = dataport_testkit::config();
    configure(&mut config);
    let files = config.data_dir.join("files");
    let server = dataport_testkit::start_with(config, dir).await;
    let client = client(server.channel().await);
    (server, client, files)
}

/// `data` cut into pieces of odd sizes (1 byte to 300,001), as a client
/// with no fixed chunk size might send it.
pub fn odd_pieces(data: &[u8]) -> Vec<&[u8]> {
    let sizes = [1, 7_777, 65_539, 300_001, 3];
    let mut pieces = Vec::new();
    let mut rest = data;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (now, later) = rest.split_at((*size).min(rest.len()));
        pieces.push(now);
        rest = later;
    }
    pieces
}

/// Every file under `dir` (recursively), but the store's index.
pub fn stored_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("index.sqlite3")) {
                found.push(path);
            }
        }
    }
    found
}

/// Forwards one connection to `server` until the returned task is aborted,
/// which cuts both sockets as a dying client or network would.
pub async fn cuttable_proxy(
    server: std::net::SocketAddr,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let task = tokio::spawn(async move {
        let Ok((mut client, _)) = listener.accept().await else { return };
        let Ok(mut upstream) = tokio::net::TcpStream::connect(server).await else { return };
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    });
    (addr, task)
}

/// Every message of a response stream, each turned into its bytes by
/// `bytes`: all of them joined, and each one's size.
pub async fn collect<M>(
    mut stream: tonic::Streaming<M>,
    bytes: impl Fn(&M) -> &[u8],
) -> Result<(Vec<u8>, Vec<usize>), tonic::Status> {
    let (mut data, mut sizes) = (Vec::new(), Vec::new());
    while let Some(message) = stream.message().await? {
        sizes.push(bytes(&message).len());
        data.extend_from_slice(bytes(&message));
    }
    Ok((data, sizes))
}
