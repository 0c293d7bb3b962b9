//! The listener's connections: plain TCP, or TLS with rustls (TLS 1.2 and
//! 1.3, ALPN h2) from PEM files that are read again when they change or on
//! SIGHUP, and, under mutual TLS, the caller's name from its certificate.
//!
//! A reload builds a whole new rustls `ServerConfig` (certificate chain,
//! key, client CA) and swaps it in: new connections handshake with it, open
//! ones keep theirs. A file that does not load is logged and the config in
//! use stays. Handshakes run beside each other and never hold up accepting;
//! one that fails or takes longer than `handshake_timeout` drops only its
//! connection.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::TcpIncoming;

use crate::watch::Watched;

/// How long a connection is silent before TCP keepalive probes it.
const TCP_KEEPALIVE: Duration = Duration::from_secs(2 * 3600);
/// How many handshakes may be under way at once; accepting waits past it.
const HANDSHAKES_IN_FLIGHT: usize = 256;

/// Where the TLS files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Present for mutual TLS: clients must show a certificate signed by it.
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS files did not load.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {reason}")]
    Read { what: &'static str, path: PathBuf, reason: String },
    #[error("{what} {path} holds no {expected}")]
    Empty { what: &'static str, path: PathBuf, expected: &'static str },
    #[error("TLS setup with {cert} and {key}: {reason}")]
    Config { cert: PathBuf, key: PathBuf, reason: String },
}

/// The TLS setup in use, and the files it came from.
#[derive(Debug)]
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
    /// The files as they were loaded, until [`Tls::watch`] starts watching.
    watched: Mutex<Option<Watched>>,
}

impl Tls {
    /// Loads the files; an error here refuses to start.
    pub fn load(files: TlsFiles) -> Result<Arc<Tls>, TlsError> {
        let paths = [Some(&files.cert), Some(&files.key), files.client_ca.as_ref()];
        let watched = Watched::new(paths.into_iter().flatten().cloned().collect());
        let config = server_config(&files)?;
        let current = RwLock::new(Arc::new(config));
        Ok(Arc::new(Tls { files, current, watched: Mutex::new(Some(watched)) }))
    }

    /// Whether clients must show a certificate.
    pub fn mutual(&self) -> bool {
        self.files.client_ca.is_some()
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self.current.read().unwrap_or_else(PoisonError::into_inner);
        tokio_rustls::TlsAcceptor::from(Arc::clone(&config))
    }

    /// Reads the files again and, if they load, uses them for new
    /// connections; otherwise keeps what is in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.files)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        Ok(())
    }

    /// Reloads when the files change or on SIGHUP (see [`Watched::spawn`]).
    pub fn watch(self: &Arc<Self>) {
        let watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(watched) = watched {
            let tls = Arc::clone(self);
            watched.spawn("tls", move || tls.reload().map_err(|e| e.to_string()));
        }
    }
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Read { what, path: path.to_owned(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Empty { what, path: path.to_owned(), expected: "PEM certificate" });
    }
    Ok(certs)
}

fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let chain = read_certs("tls_cert", &files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            TlsError::Empty { what: "tls_key", path: files.key.clone(), expected: "PEM private key" }
        }
        e => TlsError::Read { what: "tls_key", path: files.key.clone(), reason: e.to_string() },
    })?;
    let config_error =
        |reason: String| TlsError::Config { cert: files.cert.clone(), key: files.key.clone(), reason };
    // ring, not aws-lc-rs: no C build, at the price of no post-quantum key
    // exchange (rustls deprecates ring's provider for that reason alone).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| config_error(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs("tls_client_ca", ca)? {
                roots.add(cert).map_err(|e| config_error(format!("tls_client_ca {}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| config_error(format!("tls_client_ca {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| config_error(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The name a client certificate gives its holder: the subject's common
/// name, else its first subject alternative name (DNS name, email or URI).
pub fn certificate_name(cert: &CertificateDer<'_>) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    if let Some(cn) = cert.subject().iter_common_name().find_map(|cn| cn.as_str().ok())
        && !cn.is_empty()
    {
        return Some(cn.to_owned());
    }
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => Some((*s).to_owned()),
        _ => None,
    })
}

/// Who is at the other end of a connection; every request carries it as an
/// extension.
#[derive(Clone, Debug, Default)]
pub struct Peer {
    pub addr: Option<SocketAddr>,
    /// The name its client certificate gives, under mutual TLS.
    pub certificate_name: Option<Arc<str>>,
}

/// One accepted connection, plain or TLS, which can tell when its client
/// has sent its first bytes ([`Conn::watch_greeting`]).
#[derive(Debug)]
pub struct Conn {
    transport: Transport,
    greeting: Option<Greeting>,
}

#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>, Peer),
}

/// How many bytes of its greeting the client has yet to send, and the flag
/// set once it has.
#[derive(Debug)]
struct Greeting {
    unread: usize,
    greeted: Arc<AtomicBool>,
}

impl Conn {
    fn new(transport: Transport) -> Self {
        Conn { transport, greeting: None }
    }

    /// Who is at the other end.
    pub fn peer(&self) -> Peer {
        match &self.transport {
            Transport::Plain(tcp) => Peer { addr: tcp.peer_addr().ok(), certificate_name: None },
            Transport::Tls(_, peer) => peer.clone(),
        }
    }

    /// Resolves once the client has sent something (or closed): at once
    /// after a TLS handshake, which took its bytes. (A peek, since
    /// `readable` resolves at once for a new socket.)
    pub async fn readable(&self) -> io::Result<()> {
        match &self.transport {
            Transport::Plain(tcp) => tcp.peek(&mut [0; 1]).await.map(drop),
            Transport::Tls(..) => Ok(()),
        }
    }

    /// Sets the flag it answers once the client has sent `bytes` bytes
    /// (after TLS, if any).
    pub fn watch_greeting(&mut self, bytes: usize) -> Arc<AtomicBool> {
        let greeted = Arc::new(AtomicBool::new(bytes == 0));
        self.greeting = Some(Greeting { unread: bytes, greeted: Arc::clone(&greeted) });
        greeted
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = match &mut this.transport {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s, _) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if let Some(greeting) = &mut this.greeting {
            greeting.unread = greeting.unread.saturating_sub(buf.filled().len() - before);
            if greeting.unread == 0 {
                greeting.greeted.store(true, Ordering::Release);
                this.greeting = None;
            }
        }
        read
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().transport {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s, _) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().transport {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s, _) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.transport {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s, _) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s, _) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s, _) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The connections of `listener`: TLS ones once their handshake is done
/// when `tls` is given, else plain ones.
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    handshake_timeout: Duration,
) -> Pin<Box<dyn Stream<Item = io::Result<Conn>> + Send>> {
    // TCP keepalive finds a dead peer of a quiet connection at no cost per
    // frame (hyper's HTTP/2 keepalive, `keepalive_interval`, costs a lock
    // and a clock read on every frame): probes after two hours of silence,
    // the kernel's usual default.
    let tcp = TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(TCP_KEEPALIVE));
    let Some(tls) = tls else {
        return Box::pin(tcp.map(|accepted| accepted.map(|tcp| Conn::new(Transport::Plain(tcp)))));
    };
    let handshakes = tcp
        .filter_map(|accepted| async move {
            // tonic logs nothing either; the next accept goes on.
            accepted.inspect_err(|e| tracing::debug!(error = %e, "accept failed")).ok()
        })
        .map(move |tcp| {
            let acceptor = tls.acceptor();
            async move {
                let addr = tcp.peer_addr().ok();
                match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let certificate_name = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .and_then(certificate_name)
                            .map(Arc::from);
                        Some(Conn::new(Transport::Tls(Box::new(stream), Peer { addr, certificate_name })))
                    }
                    Ok(Err(e)) => {
                        tracing::info!(peer = ?addr, error = %e, "TLS handshake failed");
                        None
                    }
                    Err(_) => {
                        tracing::info!(peer = ?addr, timeout = ?handshake_timeout, "TLS handshake timed out");
                        None
                    }
                }
            }
        })
        .buffer_unordered(HANDSHAKES_IN_FLIGHT)
        .filter_map(|conn| async move { conn.map(Ok) });
    Box::pin(handshakes)
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;

    fn pair(params: CertificateParams) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn a_certificate_names_its_holder_by_common_name_else_first_san() {
        let mut with_cn = CertificateParams::new(vec!["host.example".to_owned()]).unwrap();
        with_cn.distinguished_name.push(DnType::CommonName, "collector");
        assert_eq!(certificate_name(&der(&pair(with_cn).0)).as_deref(), Some("collector"));

        let mut san_only = CertificateParams::new(vec!["host.example".to_owned()]).unwrap();
        san_only.distinguished_name = rcgen::DistinguishedName::new();
        assert_eq!(certificate_name(&der(&pair(san_only).0)).as_deref(), Some("host.example"));

        let mut email = CertificateParams::new(Vec::<String>::new()).unwrap();
        email.distinguished_name = rcgen::DistinguishedName::new();
        email.subject_alt_names = vec![SanType::Rfc822Name("ops@example.com".try_into().unwrap())];
        assert_eq!(certificate_name(&der(&pair(email).0)).as_deref(), Some("ops@example.com"));

        let mut nameless = CertificateParams::new(Vec::<String>::new()).unwrap();
        nameless.distinguished_name = rcgen::DistinguishedName::new();
        assert_eq!(certificate_name(&der(&pair(nameless).0)), None);
        assert_eq!(certificate_name(&CertificateDer::from(vec![1, 2, 3])), None);
    }

    #[test]
    fn a_reload_takes_good_files_and_keeps_the_config_in_use_on_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let files =
            TlsFiles { cert: dir.path().join("c.pem"), key: dir.path().join("k.pem"), client_ca: None };
        let write = |(cert, key): (String, String)| {
            std::fs::write(&files.cert, cert).unwrap();
            std::fs::write(&files.key, key).unwrap();
        };
        write(pair(CertificateParams::new(vec!["localhost".to_owned()]).unwrap()));
        let tls = Tls::load(files.clone()).unwrap();
        let in_use = |tls: &Tls| Arc::clone(&tls.current.read().unwrap());

        let first = in_use(&tls);
        std::fs::write(&files.cert, "garbage").unwrap();
        let error = tls.reload().unwrap_err().to_string();
        assert!(error.contains("holds no PEM certificate"), "{error}");
        assert!(Arc::ptr_eq(&first, &in_use(&tls)), "a bad file leaves the config in use");

        write(pair(CertificateParams::new(vec!["localhost".to_owned()]).unwrap()));
        tls.reload().unwrap();
        assert!(!Arc::ptr_eq(&first, &in_use(&tls)), "good files replace it");
        assert_eq!(in_use(&tls).alpn_protocols, [b"h2".to_vec()]);
    }
}
