//! The client commands against a `dataport serve` speaking TLS: https://
//! means TLS and nothing else, --ca names whom to trust, --cert and --key
//! answer a server that asks for a client certificate.

use std::path::{Path, PathBuf};

use dataport_testkit::certs::Ca;
use dataport_testkit::cli::{Served, bare, failing, stdout_of};

/// Writes `ca`'s certificate and a certificate and key it signs for
/// `names`, as FILE-ca.pem, FILE.pem and FILE.key in `dir`.
fn issue(ca: &Ca, dir: &Path, file: &str, names: &[&str]) -> [PathBuf; 3] {
    let pair = ca.sign(names, Some(file), false);
    let write = |name: String, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    [
        write(format!("{file}-ca.pem"), &ca.pem()),
        write(format!("{file}.pem"), &pair.cert),
        write(format!("{file}.key"), &pair.key),
    ]
}

fn serve_tls(dir: &Path, client_ca: Option<&Path>) -> (Served, PathBuf) {
    let [ca, cert, key] = issue(&Ca::new("Server CA"), dir, "server", &["localhost", "127.0.0.1"]);
    let (cert, key) = (cert.to_str().expect("utf-8"), key.to_str().expect("utf-8"));
    let mut flags = vec!["--tls-cert", cert, "--tls-key", key];
    if let Some(client_ca) = client_ca {
        flags.extend(["--tls-client-ca", client_ca.to_str().expect("utf-8")]);
    }
    let data = dir.join("data");
    (Served::start("info", &flags, &data), ca)
}

fn port(served: &Served) -> &str {
    served.addr.rsplit(':').next().expect("a port")
}

#[test]
fn https_servers_are_spoken_to_over_tls_or_not_at_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (served, ca) = serve_tls(dir.path(), None);
    let https = format!("https://localhost:{}", port(&served));

    let hello = |server: &str, extra: &[&str]| {
        let mut cmd = bare();
        cmd.env_remove("DATAPORT_SERVER").arg("--server").arg(server).args(extra).args(["hello", "tls"]);
        cmd
    };
    let ca = ca.to_str().expect("utf-8");
    assert_eq!(stdout_of(&mut hello(&https, &["--ca", ca])), "Hello, tls!\n");
    // A bare address with --ca is TLS too (the certificate names 127.0.0.1).
    assert_eq!(stdout_of(&mut hello(&served.addr, &["--ca", ca])), "Hello, tls!\n");

    // Without --ca the system's roots do not trust a test CA: an error, not a downgrade.
    let stderr = failing(&mut hello(&https, &[]));
    assert!(stderr.starts_with(&format!("error: cannot reach the server at {https}")), "{stderr}");
    assert!(stderr.contains("--ca"), "{stderr}");
    // Plaintext to a TLS port gets nowhere, and says what to try.
    let stderr = failing(&mut hello(&format!("http://{}", served.addr), &[]));
    assert!(stderr.contains("use --server https://"), "{stderr}");
    let stderr = failing(&mut hello(&format!("http://{}", served.addr), &["--ca", ca]));
    assert!(stderr.contains("an http:// server does not; use https://"), "{stderr}");
    let stderr = failing(&mut hello(&format!("ftp://{}", served.addr), &[]));
    assert!(stderr.contains("ftp:// is neither http:// nor https://"), "{stderr}");
}

#[test]
fn a_server_that_asks_for_a_client_certificate_gets_the_one_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [client_ca, cert, key] = issue(&Ca::new("Client CA"), dir.path(), "collector", &[]);
    let (served, ca) = serve_tls(dir.path(), Some(&client_ca));
    let https = format!("https://localhost:{}", port(&served));
    let mut with = bare();
    with.env_remove("DATAPORT_SERVER").arg("--server").arg(&https).arg("--ca").arg(&ca);
    with.arg("--cert").arg(&cert).arg("--key").arg(&key).args(["hello", "mtls"]);
    assert_eq!(stdout_of(&mut with), "Hello, mtls!\n");

    let mut without = bare();
    without.env_remove("DATAPORT_SERVER").arg("--server").arg(&https).arg("--ca").arg(&ca);
    let out = without.args(["hello", "mtls"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1), "no client certificate, no answer");

    let out = bare().arg("--cert").arg(&cert).args(["hello", "x"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "--cert needs --key");
}
