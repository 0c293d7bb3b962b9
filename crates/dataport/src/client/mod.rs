//! Client commands: one module per area, each calling the server over a
//! shared channel and printing plain text.

pub mod files;
pub mod greeter;
pub mod health;
pub mod market;
pub mod outliers;
pub mod position;
pub mod route;
mod rows;
mod wire;

use std::process::ExitCode;

use dataport_server::logging::code_name;
use std::path::PathBuf;

use anyhow::Context as _;
use http::HeaderValue;
use tonic::codegen::Service;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// Connects to `server`, runs `command`, and turns its outcome into an exit
/// code: failures print the gRPC status code and message on stderr.
pub fn main<F, Fut>(server: &str, tls: &TlsArgs, command: F) -> ExitCode
where
    F: FnOnce(Channel) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let token = match &tls.token {
            None => None,
            Some(token) => Some(HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                anyhow::anyhow!("--token: a token is printable ASCII (dataport token new prints one)")
            })?),
        };
        let channel = Channel { inner: connect(server, tls).await?, token };
        command(channel).await
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<tonic::Status>() {
                // A plaintext client's first call to a TLS port ends so: the
                // server hangs up on bytes that are no TLS record.
                Some(status)
                    if matches!(status.code(), tonic::Code::Unknown | tonic::Code::Internal)
                        && ["transport error", "h2 protocol error"]
                            .iter()
                            .any(|m| status.message().starts_with(m))
                        && server_url(server, tls).is_ok_and(|url| url.starts_with("http://")) =>
                {
                    eprintln!(
                        "error: {}: {} (the server hung up: if it speaks TLS, use --server https://...)",
                        code_name(status.code() as i32),
                        status.message()
                    );
                }
                Some(status) => eprintln!("error: {}: {}", code_name(status.code() as i32), status.message()),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// How the client commands speak TLS to an https:// server.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    /// CA certificates (PEM) to trust for the server, instead of the system's.
    #[arg(long, global = true, env = "DATAPORT_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// A client certificate (PEM) for a server that asks for one (mutual TLS); with --key.
    #[arg(long, global = true, env = "DATAPORT_CERT", value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, global = true, env = "DATAPORT_KEY", value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// A token for a server with auth_tokens, sent as `authorization: Bearer TOKEN`.
    #[arg(long, global = true, env = "DATAPORT_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// The connection every client command calls through: its calls carry the
/// token, when one is given.
#[derive(Clone, Debug)]
pub struct Channel {
    inner: tonic::transport::Channel,
    token: Option<HeaderValue>,
}

impl Service<http::Request<tonic::body::Body>> for Channel {
    type Response = <tonic::transport::Channel as Service<http::Request<tonic::body::Body>>>::Response;
    type Error = <tonic::transport::Channel as Service<http::Request<tonic::body::Body>>>::Error;
    type Future = <tonic::transport::Channel as Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        if let Some(token) = &self.token {
            request.headers_mut().insert(http::header::AUTHORIZATION, token.clone());
        }
        self.inner.call(request)
    }
}

impl TlsArgs {
    fn given(&self) -> bool {
        self.ca.is_some() || self.cert.is_some()
    }

    /// The TLS settings: the CA given or the system's roots, and the client
    /// certificate if given.
    fn config(&self) -> anyhow::Result<ClientTlsConfig> {
        let read = |flag: &str, path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("--{flag} {}: cannot read", path.display()))
        };
        let mut config = ClientTlsConfig::new();
        config = match &self.ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read("ca", ca)?)),
            None => config.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            config = config.identity(Identity::from_pem(read("cert", cert)?, read("key", key)?));
        }
        Ok(config)
    }
}

/// The URL `server` means: as given with a scheme; bare, https:// when TLS
/// flags are given and http:// otherwise.
fn server_url(server: &str, tls: &TlsArgs) -> anyhow::Result<String> {
    let url = match server.split_once("://") {
        None if tls.given() => format!("https://{server}"),
        None => format!("http://{server}"),
        Some(("http", _)) if tls.given() => anyhow::bail!(
            "--server {server}: --ca and --cert speak TLS, which an http:// server does not; use https://"
        ),
        Some(("http" | "https", _)) => server.to_owned(),
        Some((scheme, _)) => anyhow::bail!("--server {server}: {scheme}:// is neither http:// nor https://"),
    };
    Ok(url)
}

async fn connect(server: &str, tls: &TlsArgs) -> anyhow::Result<tonic::transport::Channel> {
    let url = server_url(server, tls)?;
    // The same HTTP/2 frames and windows the server uses, so large messages
    // (file chunks, Detect batches) cross in few frames and window updates.
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| anyhow::anyhow!("--server {server:?}: {e}"))?
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(16 << 20)
        .max_frame_size(1 << 20);
    let secure = url.starts_with("https://");
    if secure {
        // An https:// server is spoken to over TLS or not at all.
        endpoint = endpoint.tls_config(tls.config()?).map_err(|e| anyhow::anyhow!("--server {url}: {e}"))?;
    }
    endpoint.connect().await.map_err(|e| {
        let mut cause = String::new();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            cause = s.to_string();
            source = s.source();
        }
        let hint = match secure {
            true => "is it serving TLS, and does --ca name the CA that signed its certificate?",
            false => "is `dataport serve` running? set --server or DATAPORT_SERVER",
        };
        anyhow::anyhow!("cannot reach the server at {url}: {cause} ({hint})")
    })
}
