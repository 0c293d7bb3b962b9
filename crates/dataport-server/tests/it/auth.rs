//! Tokens with scopes, and protected mode, against a real server.

use crate::common;

use std::path::Path;

use common::assert_status;
use dataport_proto::dataport::market::v1 as market;
use dataport_proto::dataport::market::v1::market_service_client::MarketServiceClient;
use dataport_proto::grpc::health::v1::HealthCheckRequest;
use dataport_proto::grpc::health::v1::health_client::HealthClient;
use dataport_proto::helloworld::HelloRequest;
use dataport_proto::helloworld::greeter_client::GreeterClient;
use dataport_server::auth::secret_sha256;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

const READER: &str = "reader-secret-1f2e3d";
const ADMIN: &str = "admin-secret-9a8b7c";

fn token_file(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        "[[token]]\nname = \"reader\"\nsha256 = \"{}\"\nscopes = [\"greeter:read\", \"market:read\"]\n\n\
         [[token]]\nname = \"admin\"\nsha256 = \"{}\"\nscopes = [\"*:write\"]\n",
        secret_sha256(READER),
        secret_sha256(ADMIN)
    );
    let path = dir.join("tokens.toml");
    std::fs::write(&path, text).expect("write");
    path
}

type Authed = InterceptedService<
    Channel,
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>,
>;

/// A channel whose calls carry `authorization: Bearer SECRET` (none for `None`).
async fn with_token(server: &common::TestServer, secret: Option<&str>) -> Authed {
    let value: Option<MetadataValue<_>> = secret.map(|s| format!("Bearer {s}").parse().expect("ascii"));
    let add = move |mut request: tonic::Request<()>| {
        if let Some(value) = &value {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    };
    InterceptedService::new(server.channel().await, Box::new(add) as _)
}

async fn hello(channel: Authed) -> Result<String, tonic::Status> {
    let reply = GreeterClient::new(channel).say_hello(HelloRequest { name: "auth".into() }).await?;
    Ok(reply.into_inner().message)
}

async fn delete(channel: Authed) -> Result<market::DeleteSymbolResponse, tonic::Status> {
    let request = market::DeleteSymbolRequest { symbol: "AAPL".into() };
    Ok(MarketServiceClient::new(channel).delete_symbol(request).await?.into_inner())
}

#[tokio::test]
async fn calls_need_a_known_token_with_the_scope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut config, data) = common::config();
    config.sample_data = true;
    config.auth_tokens = Some(token_file(dir.path()));
    config.metrics_listen = Some("127.0.0.1:0".parse().expect("an address"));
    let server = common::start_with(config, data).await;

    assert_eq!(hello(with_token(&server, Some(READER)).await).await.unwrap(), "Hello, auth!");
    assert_status(
        hello(with_token(&server, None).await).await,
        Code::Unauthenticated,
        &["needs a token", "authorization: Bearer SECRET"],
    );
    assert_status(
        hello(with_token(&server, Some("guess")).await).await,
        Code::Unauthenticated,
        &["not known"],
    );
    assert_status(
        delete(with_token(&server, Some(READER)).await).await,
        Code::PermissionDenied,
        &["reader may not call /dataport.market.v1.MarketService/DeleteSymbol", "market:write"],
    );
    let symbols = MarketServiceClient::new(with_token(&server, Some(READER)).await)
        .list_symbols(market::ListSymbolsRequest {})
        .await
        .unwrap()
        .into_inner()
        .symbols;
    assert_eq!(symbols.len(), 4, "the refused delete changed nothing");
    assert_eq!(delete(with_token(&server, Some(ADMIN)).await).await.unwrap().deleted, 3270);

    // Health answers everyone.
    let mut health = HealthClient::new(server.channel().await);
    assert!(health.check(HealthCheckRequest { service: String::new() }).await.is_ok());

    // The metrics count calls by caller; a secret never appears.
    let text = crate::metrics::scrape(&server).await;
    let by = |caller: &str, service: &str, method: &str, code: &str| {
        let labels = format!(
            r#"{{caller="{caller}",grpc_service="{service}",grpc_method="{method}",grpc_code="{code}"}}"#
        );
        crate::metrics::sample(&text, &format!("dataport_calls_by_caller_total{labels}"))
    };
    assert_eq!(by("reader", "helloworld.Greeter", "SayHello", "OK"), Some(1.0), "{text}");
    let market = "dataport.market.v1.MarketService";
    assert_eq!(by("reader", market, "DeleteSymbol", "PermissionDenied"), Some(1.0), "{text}");
    assert_eq!(by("admin", market, "DeleteSymbol", "OK"), Some(1.0), "{text}");
    assert!(!text.contains(READER) && !text.contains(ADMIN));
}

#[tokio::test]
async fn a_changed_token_file_is_read_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut config, data) = common::config();
    let file = token_file(dir.path());
    config.auth_tokens = Some(file.clone());
    let server = common::start_with(config, data).await;
    assert!(hello(with_token(&server, Some(READER)).await).await.is_ok());

    // A file that does not load leaves the tokens in use.
    std::fs::write(&file, "[[token]]\nname = 1\n").expect("write");
    assert!(hello(with_token(&server, Some(READER)).await).await.is_ok());

    let text = format!(
        "[[token]]\nname = \"new\"\nsha256 = \"{}\"\nscopes = [\"greeter:read\"]\n",
        secret_sha256("fresh")
    );
    std::fs::write(&file, text).expect("write");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while hello(with_token(&server, Some("fresh")).await).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the new token file was never read");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_status(
        hello(with_token(&server, Some(READER)).await).await,
        Code::Unauthenticated,
        &["not known"],
    );
}

#[test]
fn a_non_loopback_address_needs_tls_and_auth_or_insecure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut config, _data) = common::config();
    config.listen = "0.0.0.0:50051".parse().expect("an address");
    let error = dataport_server::Server::new(config.clone()).unwrap_err().to_string();
    assert!(
        error.starts_with("refusing to serve 0.0.0.0:50051 without TLS and auth")
            && error.contains("--tls-cert")
            && error.contains("--auth-tokens")
            && error.contains("--insecure"),
        "{error}"
    );
    config.auth_tokens = Some(token_file(dir.path()));
    let error = dataport_server::Server::new(config.clone()).unwrap_err().to_string();
    assert!(error.starts_with("refusing to serve 0.0.0.0:50051 without TLS:"), "{error}");
    config.insecure = true;
    assert!(dataport_server::Server::new(config).is_ok(), "insecure accepts the risk");
}
