//! TLS and mutual TLS on the listener, against tonic clients, with
//! certificates made here by rcgen.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dataport_proto::helloworld::HelloRequest;
use dataport_proto::helloworld::greeter_client::GreeterClient;
use dataport_testkit::certs::{Ca, Pair, self_signed};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// A server with `server` as its certificate and, for mutual TLS, `client_ca`.
async fn tls_server(dir: &Path, server: &Pair, client_ca: Option<&Ca>) -> common::TestServer {
    let (mut config, data) = common::config();
    config.tls_cert = Some(write(dir, "server.pem", &server.cert));
    config.tls_key = Some(write(dir, "server.key", &server.key));
    config.tls_client_ca = client_ca.map(|ca| write(dir, "client-ca.pem", &ca.pem()));
    common::start_with(config, data).await
}

/// A TLS channel to `server` trusting `ca`, showing `identity` if given.
async fn connect(server: &common::TestServer, ca: &Ca, identity: Option<&Pair>) -> Result<Channel, String> {
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.pem())).domain_name("localhost");
    if let Some(pair) = identity {
        tls = tls.identity(Identity::from_pem(&pair.cert, &pair.key));
    }
    let endpoint = Channel::from_shared(format!("https://localhost:{}", server.addr.port()))
        .expect("a URL")
        .tls_config(tls)
        .map_err(|e| e.to_string())?;
    endpoint.connect().await.map_err(|e| format!("{e:?}"))
}

async fn hello(channel: Channel) -> Result<String, String> {
    let reply = GreeterClient::new(channel).say_hello(HelloRequest { name: "tls".into() }).await;
    reply.map(|r| r.into_inner().message).map_err(|s| format!("{s:?}"))
}

/// Connects and says hello: the error of whichever step failed.
async fn call(server: &common::TestServer, ca: &Ca, identity: Option<&Pair>) -> Result<String, String> {
    hello(connect(server, ca, identity).await?).await
}

#[tokio::test]
async fn a_tls_port_answers_tls_clients_and_refuses_plaintext_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Test CA");
    let server = tls_server(dir.path(), &ca.sign(&["localhost", "127.0.0.1"], None, false), None).await;
    assert_eq!(call(&server, &ca, None).await.unwrap(), "Hello, tls!");

    let plain = Channel::from_shared(server.url()).unwrap().connect().await;
    let refused = match plain {
        Ok(channel) => hello(channel).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "plaintext HTTP/2 to the TLS port must fail");

    // A client that trusts another CA refuses the server.
    assert!(call(&server, &Ca::new("Other CA"), None).await.is_err());
}

#[tokio::test]
async fn mutual_tls_takes_only_clients_with_a_certificate_of_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, clients) = (Ca::new("Server CA"), Ca::new("Client CA"));
    let server = tls_server(dir.path(), &ca.sign(&["localhost"], None, false), Some(&clients)).await;

    let collector = clients.sign(&[], Some("collector"), false);
    assert_eq!(call(&server, &ca, Some(&collector)).await.unwrap(), "Hello, tls!");

    let refusals = [
        ("no certificate", None),
        ("a certificate of another CA", Some(Ca::new("Rogue CA").sign(&[], Some("rogue"), false))),
        ("an expired certificate", Some(clients.sign(&[], Some("old"), true))),
        ("a self-signed certificate", Some(self_signed("me"))),
    ];
    for (what, identity) in refusals {
        let result = call(&server, &ca, identity.as_ref()).await;
        assert!(result.is_err(), "a client with {what} was let in: {result:?}");
    }
}

#[tokio::test]
async fn a_changed_certificate_serves_new_connections_and_open_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (Ca::new("First CA"), Ca::new("Second CA"));
    let server = tls_server(dir.path(), &first.sign(&["localhost"], None, false), None).await;
    let open = connect(&server, &first, None).await.unwrap();
    assert!(hello(open.clone()).await.is_ok());

    // A bad file is not taken: the server goes on with the first certificate.
    write(dir.path(), "server.pem", "not a certificate");
    assert!(call(&server, &first, None).await.is_ok());

    let renewed = second.sign(&["localhost"], None, false);
    write(dir.path(), "server.key", &renewed.key);
    write(dir.path(), "server.pem", &renewed.cert);
    let deadline = Instant::now() + Duration::from_secs(20);
    while call(&server, &second, None).await.is_err() {
        assert!(Instant::now() < deadline, "the new certificate was never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(call(&server, &first, None).await.is_err(), "new connections get only the new certificate");
    assert_eq!(hello(open).await.unwrap(), "Hello, tls!", "an open connection keeps working");
}

#[tokio::test]
async fn a_server_whose_tls_files_do_not_load_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let pair = Ca::new("CA").sign(&["localhost"], None, false);
    let cases = [
        ("server.pem", "no certificate here", "server.key", pair.key.as_str(), "holds no PEM certificate"),
        ("server.pem", pair.cert.as_str(), "server.key", "no key here", "holds no PEM private key"),
    ];
    for (cert_name, cert, key_name, key, says) in cases {
        let (mut config, _data) = common::config();
        config.tls_cert = Some(write(dir.path(), cert_name, cert));
        config.tls_key = Some(write(dir.path(), key_name, key));
        let error = dataport_server::Server::new(config).unwrap_err().to_string();
        assert!(error.contains(says), "{error}");
    }
    let (mut config, _data) = common::config();
    config.tls_cert = Some(dir.path().join("missing.pem"));
    config.tls_key = Some(write(dir.path(), "server.key", &pair.key));
    let error = dataport_server::Server::new(config).unwrap_err().to_string();
    assert!(error.starts_with("cannot read tls_cert") && error.contains("missing.pem"), "{error}");
}
