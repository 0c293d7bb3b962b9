//! TLS to the shared database, asked for as libpq asks: `sslmode` and
//! `sslrootcert` in the URL's query, over rustls with ring.
//!
//! tokio-postgres knows `sslmode` disable, prefer and require only, and
//! refuses keys it does not know: [`parse`] takes both keys out of the URL,
//! hands tokio-postgres the rest and sets its mode itself.
//!
//! Where libpq's `require` encrypts without checking anything, TLS here
//! always checks the server's certificate, against `sslrootcert` (a PEM file
//! of CA certificates) or, without it, the system's roots (`SSL_CERT_FILE`
//! and `SSL_CERT_DIR` are honoured); `require`, like `verify-full`, checks the
//! host name too, and only `verify-ca` skips that check. An encrypted
//! connection nobody authenticated would keep the password from an eavesdropper
//! and hand it to whoever answers instead. So a URL without `sslmode` keeps
//! the plain connections it always had (`disable`, not libpq's `prefer`): a
//! stock server with a self-signed certificate (Debian's "snakeoil") would
//! otherwise fail where plain connections worked.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::DbError;

/// What the URL's `sslmode` asks for; libpq's names and, but for the
/// checks (see the module's documentation), its meanings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain connections (the default).
    Disable,
    /// TLS if the server offers it, plain if it refuses TLS; a certificate
    /// that fails the checks is an error, not a reason to go plain.
    Prefer,
    /// TLS, the certificate and the host name checked.
    Require,
    /// TLS, the certificate checked but not the host name.
    VerifyCa,
    /// TLS, the certificate and the host name checked.
    VerifyFull,
}

impl SslMode {
    const ALL: [SslMode; 5] =
        [SslMode::Disable, SslMode::Prefer, SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull];

    /// Its value in a URL.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Result<Self, DbError> {
        SslMode::ALL.into_iter().find(|mode| mode.name() == value).ok_or_else(|| {
            url_error(format!(
                "sslmode {value:?} is not one of disable, prefer, require, verify-ca, verify-full"
            ))
        })
    }
}

/// A database URL's connection settings, with its TLS settings parsed.
pub(super) struct Parsed {
    pub config: tokio_postgres::Config,
    pub mode: SslMode,
    pub connector: MakeRustlsConnect,
    /// What the server's certificate is checked against, for errors.
    pub trust: String,
}

fn url_error(reason: String) -> DbError {
    DbError::Url { reason }
}

/// Parses `url` (`postgres://...` or `postgresql://...`): its `sslmode` and
/// `sslrootcert` here, the rest by tokio-postgres. A bad value of either
/// key, or an `sslrootcert` that cannot be read, is [`DbError::Url`] naming
/// the key and the value (never the password).
pub(super) fn parse(url: &str) -> Result<Parsed, DbError> {
    let not_a_url = |reason: &dyn std::fmt::Display| {
        url_error(format!("not a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE): {reason}"))
    };
    let Some(scheme_end) =
        ["postgres://", "postgresql://"].iter().find_map(|s| url.starts_with(s).then_some(s.len()))
    else {
        return Err(not_a_url(&"it does not start with postgres:// or postgresql://"));
    };
    // The query starts at the first `?` past the credentials, which run to
    // the first `@` as tokio-postgres reads them (a password may hold a `?`).
    let credentials_end = url[scheme_end..].find('@').map_or(scheme_end, |at| scheme_end + at + 1);
    let (base, query) = match url[credentials_end..].find('?') {
        Some(at) => (&url[..credentials_end + at], &url[credentials_end + at + 1..]),
        None => (url, ""),
    };
    let (mut mode, mut rootcert) = (None, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned();
        match &*percent_encoding::percent_decode_str(key).decode_utf8_lossy() {
            "sslmode" => mode = Some(SslMode::parse(&value())?),
            "sslrootcert" => rootcert = Some(value()),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| not_a_url(&e))?;
    let mode = mode.unwrap_or(SslMode::Disable);
    config.ssl_mode(match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    });
    let (roots, trust) = match rootcert.as_deref() {
        // libpq's name for the system's roots.
        Some("system") => (system_roots(mode)?, "the system's root certificates".to_owned()),
        Some(path) => (roots_from(Path::new(path))?, format!("sslrootcert {path:?}")),
        None => {
            (system_roots(mode)?, "the system's root certificates; the URL names no sslrootcert".to_owned())
        }
    };
    let connector = MakeRustlsConnect::new(client_config(mode, roots)?);
    Ok(Parsed { config, mode, connector, trust })
}

/// The CA certificates in the PEM file at `path`.
fn roots_from(path: &Path) -> Result<RootCertStore, DbError> {
    let bad =
        |reason: &dyn std::fmt::Display| url_error(format!("sslrootcert {:?}: {reason}", path.display()));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&pem_error(e)))? {
        roots.add(cert.map_err(|e| bad(&pem_error(e)))?).map_err(|e| bad(&e))?;
    }
    if roots.is_empty() {
        return Err(bad(&"holds no PEM certificate"));
    }
    Ok(roots)
}

/// rustls-pki-types' error, with the I/O error's own words.
fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not a PEM file of certificates ({other:?})"),
    }
}

/// The system's root certificates, loaded only when TLS will use them.
fn system_roots(mode: SslMode) -> Result<RootCertStore, DbError> {
    let mut roots = RootCertStore::empty();
    if mode == SslMode::Disable {
        return Ok(roots);
    }
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(url_error(format!(
            "sslmode={} needs root certificates: the system has none ({}); name a CA file with sslrootcert",
            mode.name(),
            errors.join("; ")
        )));
    }
    Ok(roots)
}

/// rustls with ring, as the process's other TLS (the listener's, S3's):
/// aws-lc-rs is never built.
fn client_config(mode: SslMode, roots: RootCertStore) -> Result<ClientConfig, DbError> {
    // rustls deprecates ring's provider only for its lack of post-quantum
    // key exchange, as the server's TLS notes.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| url_error(format!("TLS: {e}")))?;
    let config = if mode == SslMode::VerifyCa {
        let verifier = ChainOnly { roots: Arc::new(roots), provider };
        builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth()
    } else {
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(config)
}

/// `verify-ca`: the certificate's chain up to a trusted root, its validity
/// and its signatures are checked exactly as rustls's own verifier checks
/// them (the same functions), but not the name it was issued for.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        let algorithms = self.provider.signature_verification_algorithms.all;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            algorithms,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The certificate error rustls gave, if `e` is a handshake that failed
/// on one (tokio-postgres keeps it as an I/O error's inner error).
pub(super) fn certificate_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        let inner = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|e| e as _);
        if let Some(tls) = inner.unwrap_or(err).downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        source = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> String {
        match parse(url) {
            Err(e @ DbError::Url { .. }) => e.to_string(),
            Err(other) => panic!("{url}: not a URL error: {other}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_and_the_rest_is_kept() {
        let ca = ca_file();
        let path = ca.path().display().to_string();
        let encoded: String =
            percent_encoding::utf8_percent_encode(&path, percent_encoding::NON_ALPHANUMERIC).collect();
        let url = format!(
            "postgres://dp:s3cret@db.example:6543/bars?application_name=dp&sslmode=verify-ca&sslrootcert={encoded}"
        );
        let parsed = parse(&url).unwrap();
        assert_eq!(parsed.mode, SslMode::VerifyCa);
        assert_eq!(parsed.config.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert_eq!(parsed.config.get_application_name(), Some("dp"));
        assert_eq!(parsed.config.get_ports(), &[6543]);
        assert_eq!(parsed.trust, format!("sslrootcert {path:?}"));
        for (mode, expected) in [
            ("disable", tokio_postgres::config::SslMode::Disable),
            ("prefer", tokio_postgres::config::SslMode::Prefer),
            ("require", tokio_postgres::config::SslMode::Require),
            ("verify-full", tokio_postgres::config::SslMode::Require),
        ] {
            let parsed = parse(&format!("postgres://h/d?sslmode={mode}&sslrootcert={encoded}")).unwrap();
            assert_eq!(parsed.config.get_ssl_mode(), expected, "{mode}");
        }
    }

    /// A PEM file of one self-signed certificate.
    fn ca_file() -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(file.path(), cert.cert.pem()).unwrap();
        file
    }

    #[test]
    fn a_password_may_hold_what_separates_the_query() {
        let ca = ca_file();
        let url = format!(
            "postgres://dp:p?w&d=x@h/d?sslmode=verify-full&sslrootcert={}&connect_timeout=3",
            ca.path().display()
        );
        let parsed = parse(&url).unwrap();
        assert_eq!(parsed.mode, SslMode::VerifyFull);
        assert_eq!(parsed.config.get_password(), Some(&b"p?w&d=x"[..]));
        assert_eq!(parsed.config.get_connect_timeout(), Some(&std::time::Duration::from_secs(3)));
    }

    #[test]
    fn a_url_without_sslmode_stays_plain() {
        let parsed = parse("postgresql://dp@127.0.0.1/bars").unwrap();
        assert_eq!(parsed.mode, SslMode::Disable);
        assert_eq!(parsed.config.get_ssl_mode(), tokio_postgres::config::SslMode::Disable);
    }

    #[test]
    fn a_bad_sslmode_or_sslrootcert_is_refused_naming_the_key_and_value_but_not_the_password() {
        let err = refused("postgres://dp:s3cret@h/d?sslmode=verify-fulll");
        assert_eq!(
            err,
            "bars_url: sslmode \"verify-fulll\" is not one of disable, prefer, require, verify-ca, verify-full"
        );
        let err = refused("postgres://dp:s3cret@h/d?sslmode=require&sslrootcert=/nonexistent/ca.pem");
        assert!(err.starts_with("bars_url: sslrootcert \"/nonexistent/ca.pem\": No such file"), "{err}");
        let empty = tempfile::NamedTempFile::new().unwrap();
        let err = refused(&format!(
            "postgres://dp:s3cret@h/d?sslmode=require&sslrootcert={}",
            empty.path().display()
        ));
        assert!(err.ends_with("holds no PEM certificate"), "{err}");
        let err = refused("postgres://dp:s3cret@h/d?sslmode=require&sslcert=/x.pem");
        assert!(err.starts_with("bars_url: not a PostgreSQL URL"), "{err}");
        for err in [err, refused("postgres://dp:s3cret@h:port/d"), refused("mysql://dp:s3cret@h/d")] {
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
