use super::*;

const FILE: &str = r#"
    [[token]]
    name = "collector"
    sha256 = "SHA_C"
    scopes = ["outliers:read", "market:read"]

    [[token]]
    name = "admin"
    sha256 = "SHA_A"
    scopes = ["*:write"]

    [[client]]
    name = "ingest.example.com"
    scopes = ["files:write"]
"#;

fn auth(reflection_public: bool) -> Auth {
    let text = FILE.replace("SHA_C", &secret_sha256("c-secret")).replace("SHA_A", &secret_sha256("a-secret"));
    Auth {
        path: PathBuf::new(),
        entries: RwLock::new(Arc::new(Entries::parse(&text).unwrap())),
        generation: AtomicU64::new(next_generation()),
        reflection_public,
        watched: Mutex::new(None),
    }
}

fn request(path: &str, token: Option<&str>) -> http::request::Parts {
    let mut builder = http::Request::builder().uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", token);
    }
    builder.body(()).unwrap().into_parts().0
}

fn check(
    auth: &Auth,
    path: &str,
    token: Option<&str>,
    certificate: Option<&str>,
) -> Result<String, (tonic::Code, String)> {
    let peer = Peer { addr: None, certificate_name: certificate.map(Arc::from) };
    match auth.check(&request(path, token), Some(&peer), need(path)) {
        (caller, Ok(())) => Ok(caller.map_or_else(|| "anonymous".to_owned(), |c| c.0.to_string())),
        (caller, Err(s)) => {
            assert_eq!(
                caller.is_some(),
                s.code() == tonic::Code::PermissionDenied,
                "a denied caller is known"
            );
            Err((s.code(), s.message().to_owned()))
        }
    }
}

/// Each auth knows only its own token; with the system allocator a new
/// one is often made where the dropped one was.
#[test]
fn a_new_auth_never_answers_from_a_dropped_ones_entries() {
    for round in 0..20 {
        let secret = format!("secret-{round}");
        let text = format!(
            "[[token]]\nname = \"t{round}\"\nsha256 = \"{}\"\nscopes = [\"*:read\"]\n",
            secret_sha256(&secret)
        );
        let auth = Auth {
            entries: RwLock::new(Arc::new(Entries::parse(&text).unwrap())),
            generation: AtomicU64::new(next_generation()),
            ..auth(false)
        };
        let bearer = format!("Bearer {secret}");
        assert_eq!(
            check(&auth, "/helloworld.Greeter/SayHello", Some(&bearer), None),
            Ok(format!("t{round}"))
        );
        if round > 0 {
            let old = format!("Bearer secret-{}", round - 1);
            let refused = check(&auth, "/helloworld.Greeter/SayHello", Some(&old), None).unwrap_err();
            assert_eq!(refused.0, tonic::Code::Unauthenticated, "round {round}");
        }
    }
}

#[test]
fn a_scope_lets_its_area_in_and_write_includes_read() {
    let auth = auth(false);
    let c = Some("Bearer c-secret");
    assert_eq!(check(&auth, "/pb.Outliers/Detect", c, None), Ok("collector".into()));
    assert_eq!(check(&auth, "/idc.Indicator/GetMACD", c, None), Ok("collector".into()));
    let denied = check(&auth, "/dataport.market.v1.MarketService/ImportBars", c, None).unwrap_err();
    assert_eq!(
        denied,
        (
            tonic::Code::PermissionDenied,
            "collector may not call /dataport.market.v1.MarketService/ImportBars: it needs the scope market:write"
                .into()
        )
    );
    assert_eq!(
        check(&auth, "/helloworld.Greeter/SayHello", c, None).unwrap_err().0,
        tonic::Code::PermissionDenied
    );
    let admin = Some("bearer a-secret");
    assert_eq!(check(&auth, "/dataport.files.v1.FilesService/Delete", admin, None), Ok("admin".into()));
    assert_eq!(check(&auth, "/helloworld.Greeter/SayHello", admin, None), Ok("admin".into()));
}

#[test]
fn no_or_an_unknown_token_is_unauthenticated_and_health_is_open() {
    let auth = auth(false);
    let unauthenticated =
        |token, certificate| check(&auth, "/helloworld.Greeter/SayHello", token, certificate).unwrap_err().0;
    assert_eq!(unauthenticated(None, None), tonic::Code::Unauthenticated);
    assert_eq!(unauthenticated(Some("Bearer nope"), None), tonic::Code::Unauthenticated);
    assert_eq!(unauthenticated(Some("Basic YTpi"), None), tonic::Code::Unauthenticated);
    assert_eq!(unauthenticated(Some("Bearer "), None), tonic::Code::Unauthenticated);
    assert_eq!(unauthenticated(None, Some("stranger")), tonic::Code::Unauthenticated);
    assert_eq!(check(&auth, "/grpc.health.v1.Health/Check", None, None), Ok("anonymous".into()));
    // Health is open to all, and names a known token's holder.
    assert_eq!(
        check(&auth, "/grpc.health.v1.Health/Check", Some("Bearer a-secret"), None),
        Ok("admin".into())
    );
    assert_eq!(
        check(&auth, "/grpc.health.v1.Health/Check", Some("Bearer nope"), None),
        Ok("anonymous".into())
    );
    let reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
    assert_eq!(check(&auth, reflection, None, None).unwrap_err().0, tonic::Code::Unauthenticated);
    assert_eq!(check(&auth, reflection, Some("Bearer c-secret"), None), Ok("collector".into()));
    assert_eq!(check(&super::tests::auth(true), reflection, None, None), Ok("anonymous".into()));
}

#[test]
fn a_remembered_secret_names_its_token_until_a_reload_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    let text = FILE.replace("SHA_C", &secret_sha256("c-secret")).replace("SHA_A", &secret_sha256("a-secret"));
    std::fs::write(&path, &text).unwrap();
    let auth = Auth::load(path.clone(), false).unwrap();
    let say = "/helloworld.Greeter/SayHello";
    // More secrets than a thread remembers, each asked twice, in turns.
    let secrets = ["a-secret", "c-secret", "x1", "a-secret", "x2", "x3", "x4", "c-secret", "a-secret"];
    for secret in secrets.iter().chain(&secrets) {
        let token = format!("Bearer {secret}");
        let expected = match *secret {
            "a-secret" => Ok("admin".to_owned()),
            "c-secret" => Err(tonic::Code::PermissionDenied),
            _ => Err(tonic::Code::Unauthenticated),
        };
        assert_eq!(check(&auth, say, Some(&token), None).map_err(|e| e.0), expected, "{secret}");
    }
    // The same length as a remembered secret, one byte off.
    assert_eq!(check(&auth, say, Some("Bearer a-secreT"), None).unwrap_err().0, tonic::Code::Unauthenticated);
    // admin's secret is revoked: the file no longer has it.
    std::fs::write(&path, text.replace(&secret_sha256("a-secret"), &secret_sha256("new-secret"))).unwrap();
    auth.reload().unwrap();
    assert_eq!(check(&auth, say, Some("Bearer a-secret"), None).unwrap_err().0, tonic::Code::Unauthenticated);
    assert_eq!(check(&auth, say, Some("Bearer new-secret"), None), Ok("admin".to_owned()));
}

#[test]
fn a_client_certificate_named_in_the_file_is_a_caller() {
    let auth = auth(false);
    let upload = "/dataport.files.v1.FilesService/Upload";
    assert_eq!(check(&auth, upload, None, Some("ingest.example.com")), Ok("ingest.example.com".into()));
    assert_eq!(
        check(&auth, "/pb.Outliers/Detect", None, Some("ingest.example.com")).unwrap_err().0,
        tonic::Code::PermissionDenied
    );
    // A token wins over the certificate.
    assert_eq!(
        check(&auth, "/pb.Outliers/Detect", Some("Bearer c-secret"), Some("ingest.example.com")),
        Ok("collector".into())
    );
}

#[test]
fn every_served_method_is_classified() {
    use prost::Message;
    let set = prost_types::FileDescriptorSet::decode(dataport_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut served = 0;
    for file in &set.file {
        for service in &file.service {
            let name = match file.package() {
                "" => service.name().to_owned(),
                package => format!("{package}.{}", service.name()),
            };
            if !crate::SERVICES.contains(&name.as_str()) {
                continue;
            }
            for method in &service.method {
                let path = format!("/{name}/{}", method.name());
                assert!(matches!(need(&path), Some(Need::Scope(..))), "{path} is not classified");
                served += 1;
            }
        }
    }
    assert_eq!(served, METHODS.len(), "METHODS lists a method no service serves");
    assert_eq!(need("/grpc.health.v1.Health/Watch"), Some(Need::Open));
    assert_eq!(need("/nope.Service/X"), None);
}

#[test]
fn bad_files_are_refused_naming_the_entry() {
    let bad = |text: &str| Entries::parse(text).unwrap_err();
    let e = bad("[[token]]\nname = \"x\"\nsha256 = \"abc\"\nscopes = []\n");
    assert!(e.starts_with("[[token]] 1 (\"x\"): sha256 \"abc\" is not 64 hex digits"), "{e}");
    let sha = secret_sha256("s");
    let e = bad(&format!("[[token]]\nname = \"x\"\nsha256 = \"{sha}\"\nscopes = [\"market:admin\"]\n"));
    assert!(e.contains("scope \"market:admin\" is not AREA:ACCESS"), "{e}");
    let e = bad(&format!("[[token]]\nname = \"x\"\nsha256 = \"{sha}\"\nscopes = [\"shop:read\"]\n"));
    assert!(e.contains("\"shop:read\""), "{e}");
    let e = bad("[[tokens]]\nname = \"x\"\n");
    assert!(e.contains("unknown field"), "{e}");
    let twice = format!(
        "[[token]]\nname = \"a\"\nsha256 = \"{sha}\"\nscopes = []\n[[token]]\nname = \"b\"\nsha256 = \"{sha}\"\nscopes = []\n"
    );
    assert!(bad(&twice).contains("the same secret as an earlier token"));
}
