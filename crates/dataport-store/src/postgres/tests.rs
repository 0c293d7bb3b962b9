//! TLS to a real PostgreSQL: the cluster of `tests/postgres/cluster` serves
//! TLS with a certificate for localhost and 127.0.0.1 signed by its own CA,
//! `ca.pem` in its data directory (found by asking the server).

use std::path::PathBuf;

use dataport_core::market::bars::parse_csv;

use super::*;
use crate::bars::{BarStore, PgBarStore};

/// The CA that signed the test server's certificate.
fn server_ca() -> PathBuf {
    let server = std::env::var("DATAPORT_TEST_POSTGRES").expect("DATAPORT_TEST_POSTGRES");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir: String = runtime.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.query_one("SHOW data_directory", &[]).await.unwrap().get(0)
    });
    let ca = PathBuf::from(dir).join("ca.pem");
    assert!(ca.exists(), "{}: start the server with tests/postgres/cluster, which makes it", ca.display());
    ca
}

/// A CA the server's certificate does not come from, in a PEM file.
fn other_ca() -> tempfile::NamedTempFile {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), params.self_signed(&key).unwrap().pem()).unwrap();
    file
}

/// `url` with `query` added.
fn with(url: &str, query: &str) -> String {
    format!("{url}?{query}")
}

/// Whether the connection a query runs on is encrypted.
fn encrypted(db: &Database) -> bool {
    db.query(|client| async move {
        let row = client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await?;
        Ok(row.get::<_, bool>(0))
    })
    .unwrap()
}

/// The connections to `url`'s database, encrypted and plain.
fn connections(db: &Database, url: &str) -> (i64, i64) {
    let name = url.rsplit('/').next().unwrap().to_owned();
    db.query(move |client| async move {
        let row = client
            .query_one(
                "SELECT COUNT(*) FILTER (WHERE ssl), COUNT(*) FILTER (WHERE NOT ssl)
                 FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE datname = $1",
                &[&name],
            )
            .await?;
        Ok((row.get(0), row.get(1)))
    })
    .unwrap()
}

#[test]
#[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
fn with_the_servers_ca_every_mode_but_disable_connects_over_tls() {
    let (url, ca) = (test_database(), server_ca());
    for mode in ["prefer", "require", "verify-ca", "verify-full"] {
        let db = Database::connect(&with(&url, &format!("sslmode={mode}&sslrootcert={}", ca.display())), 1)
            .unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        assert!(encrypted(&db), "sslmode={mode}");
    }
}

#[test]
#[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
fn a_bar_store_works_over_tls_its_listener_included() {
    let (url, ca) = (test_database(), server_ca());
    let db =
        Database::connect(&with(&url, &format!("sslmode=require&sslrootcert={}", ca.display())), 2).unwrap();
    let store = PgBarStore::open(Arc::clone(&db)).unwrap();
    let bars = parse_csv(&b"date,open,high,low,close,volume\n2020-01-02,1,2,1,2,10\n"[..]).unwrap();
    store.import("A", &bars).unwrap();
    assert_eq!(store.bars("A").unwrap().unwrap().len(), 1);
    // The pool's connection and the listener's, and nothing in the clear.
    let (tls, plain) = connections(&db, &url);
    assert!(tls >= 2 && plain == 0, "{tls} encrypted, {plain} plain connections");
}

#[test]
#[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
fn a_server_certificate_from_another_ca_is_refused_naming_the_cause_but_not_the_password() {
    let url = test_database().replacen("postgres@", "postgres:s3cret@", 1);
    let other = other_ca();
    let err =
        Database::connect(&with(&url, &format!("sslmode=require&sslrootcert={}", other.path().display())), 1)
            .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DbError::Unreachable { .. }), "{text}");
    assert!(
        text.contains("error performing TLS handshake: invalid peer certificate: UnknownIssuer"),
        "{text}"
    );
    assert!(
        text.contains(&format!("checked against sslrootcert {:?}", other.path().display().to_string())),
        "{text}"
    );
    assert!(!text.contains("s3cret") && !format!("{err:?}").contains("s3cret"), "{text}");
    // Without sslrootcert the system's roots are the judge, and they do not
    // know the test's CA either.
    let err = Database::connect(&with(&url, "sslmode=verify-full"), 1).unwrap_err().to_string();
    assert!(err.contains("UnknownIssuer") && err.contains("the system's root certificates"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
#[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
fn verify_ca_skips_the_host_name_that_require_and_verify_full_check() {
    let (url, ca) = (test_database(), server_ca());
    // Connected to 127.0.0.1, but as a name the certificate does not carry.
    let url = url.replacen("@127.0.0.1:", "@db.invalid:", 1);
    let query = |mode: &str| format!("hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={}", ca.display());
    for mode in ["require", "verify-full"] {
        let err = Database::connect(&with(&url, &query(mode)), 1).unwrap_err().to_string();
        assert!(err.contains("certificate not valid for name \"db.invalid\""), "sslmode={mode}: {err}");
    }
    let db = Database::connect(&with(&url, &query("verify-ca")), 1).unwrap();
    assert!(encrypted(&db));
}

#[test]
#[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
fn sslmode_disable_and_no_sslmode_stay_plain() {
    let url = test_database();
    for url in [with(&url, "sslmode=disable"), url.clone()] {
        let db = Database::connect(&url, 1).unwrap();
        assert!(!encrypted(&db), "{url}");
    }
}

#[test]
#[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
fn a_bad_sslrootcert_path_is_refused_before_connecting() {
    let url = test_database().replacen("postgres@", "postgres:s3cret@", 1);
    let err =
        Database::connect(&with(&url, "sslmode=require&sslrootcert=/nonexistent/ca.pem"), 1).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DbError::Url { .. }), "{text}");
    assert!(text.starts_with("bars_url: sslrootcert \"/nonexistent/ca.pem\": No such file"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}
