//! The token file (`auth_tokens`, read by `Auth::load`) and the config file
//! (`RawSettings::from_file`, then `resolve`), from any text and from
//! files built to a plan.
//!
//! Any text: no panic; a config file that loads names only declared keys.
//! A token file built from tokens and clients loads exactly when every
//! scope is `AREA:ACCESS` and no secret is given twice; loaded, each secret
//! names its token, a client certificate its `[[client]]` entry (the last
//! of a name), an unknown secret nobody, and a caller may call a method
//! exactly when a scope allows its area and access, whatever token file was
//! loaded before in the same process. A config file of declared keys
//! resolves exactly as the same values from the environment.
#![no_main]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use dataport_server::auth::{self, Access, Area, Auth, Caller, Need};
use dataport_server::config::{ConfigError, RawSettings, Setting, env_var};
use dataport_server::tls::Peer;
use libfuzzer_sys::fuzz_target;
use tonic::Code;

/// An input is a mode byte (modulo 4) and then, so that the corpus can be
/// written by hand (0xFF and 0xFE are never part of UTF-8):
///
/// - 0, any token file: `[method] secret 0xFF text`;
/// - 1, any config file: `text`;
/// - 2, a planned token file: `[method]`, then records separated by 0xFF
///   with fields separated by 0xFE: `t` name, secret, scopes...; `c` name,
///   scopes...; `u` a secret not in the file;
/// - 3, planned settings: records separated by 0xFF, each `key 0xFE kind
///   value`, kind `s` string, `i` integer, `f` float, `b` boolean.
#[derive(Debug)]
enum Input {
    TokenText { text: String, secret: String, method: u8 },
    ConfigText(String),
    Tokens { tokens: Vec<TokenPlan>, clients: Vec<ClientPlan>, unknown: String, method: u8 },
    Settings(Vec<(&'static str, Value)>),
}

#[derive(Debug)]
struct TokenPlan {
    name: String,
    secret: String,
    scopes: Vec<String>,
}

#[derive(Debug)]
struct ClientPlan {
    name: String,
    scopes: Vec<String>,
}

#[derive(Debug)]
enum Value {
    Text(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Input {
    fn from(data: &[u8]) -> Option<Input> {
        let (&mode, rest) = data.split_first()?;
        let records = |bytes: &[u8]| -> Vec<Vec<String>> {
            bytes.split(|&b| b == 0xFF).map(|r| r.split(|&b| b == 0xFE).map(text).collect()).collect()
        };
        Some(match mode % 4 {
            0 => {
                let (&method, rest) = rest.split_first()?;
                let (secret, file) =
                    rest.split_at(rest.iter().position(|&b| b == 0xFF).unwrap_or(rest.len()));
                Input::TokenText {
                    text: text(file.get(1..).unwrap_or_default()),
                    secret: text(secret),
                    method,
                }
            }
            1 => Input::ConfigText(text(rest)),
            2 => {
                let (&method, rest) = rest.split_first()?;
                let (mut tokens, mut clients, mut unknown) = (Vec::new(), Vec::new(), String::new());
                for mut fields in records(rest) {
                    let Some(kind) = fields.first_mut().and_then(|f| (!f.is_empty()).then(|| f.remove(0)))
                    else {
                        continue;
                    };
                    let mut fields = fields.into_iter();
                    match kind {
                        't' => tokens.push(TokenPlan {
                            name: fields.next().unwrap_or_default(),
                            secret: fields.next().unwrap_or_default(),
                            scopes: fields.collect(),
                        }),
                        'c' => clients.push(ClientPlan {
                            name: fields.next().unwrap_or_default(),
                            scopes: fields.collect(),
                        }),
                        _ => unknown = fields.next().unwrap_or_default(),
                    }
                }
                Input::Tokens { tokens, clients, unknown, method }
            }
            _ => {
                let mut values = Vec::new();
                for fields in records(rest) {
                    let [key, value] = fields.as_slice() else { continue };
                    let Some(setting) = Setting::find(key) else { continue };
                    let mut chars = value.chars();
                    let value = match (chars.next(), chars.as_str()) {
                        (Some('s'), v) => Some(Value::Text(v.to_owned())),
                        (Some('i'), v) => v.parse().map(Value::Integer).ok(),
                        (Some('f'), v) => v.parse().map(Value::Float).ok(),
                        (Some('b'), v) => v.parse().map(Value::Boolean).ok(),
                        _ => None,
                    };
                    let Some(value) = value else { continue };
                    values.push((setting.key, value));
                }
                Input::Settings(values)
            }
        })
    }
}

const AREAS: [(&str, Area); 6] = [
    ("greeter", Area::Greeter),
    ("route", Area::Route),
    ("position", Area::Position),
    ("market", Area::Market),
    ("outliers", Area::Outliers),
    ("files", Area::Files),
];

/// Methods of each kind: open, reflection, one of each area and access,
/// and one not served.
const METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/helloworld.Greeter/SayHello",
    "/routeguide.RouteGuide/RouteChat",
    "/posXYZ.PositionService/PositionPub",
    "/dataport.position.v1.PositionService/Get",
    "/dataport.market.v1.MarketService/ImportBars",
    "/dataport.market.v1.MarketService/GetBars",
    "/pb.Outliers/Detect",
    "/dataport.files.v1.FilesService/Delete",
    "/google.bytestream.ByteStream/Read",
    "/google.bytestream.ByteStream/QueryWriteStatus",
    "/dataport.nothing.v1.Nothing/Here",
];

thread_local! {
    /// One scratch file, written again for every input, in a directory
    /// under the temporary directory (the runner points TMPDIR into target/).
    static FILE: PathBuf = tempfile::Builder::new()
        .prefix("dataport-fuzz-tokens-config-")
        .tempdir()
        .expect("a scratch directory")
        .keep()
        .join("file.toml");
}

fn scratch(text: &str) -> PathBuf {
    let path = FILE.with(Clone::clone);
    std::fs::write(&path, text).expect("the scratch file is written");
    path
}

fuzz_target!(|data: &[u8]| match Input::from(data) {
    None => {}
    Some(Input::TokenText { text, secret, method }) => token_text(&text, &secret, method),
    Some(Input::ConfigText(text)) => config_text(&text),
    Some(Input::Tokens { tokens, clients, unknown, method }) =>
        tokens_planned(&tokens, &clients, &unknown, method),
    Some(Input::Settings(values)) => settings(&values),
});

fn token_text(text: &str, secret: &str, method: u8) {
    let Ok(auth) = Auth::load(scratch(text), false) else { return };
    let path = METHODS[usize::from(method) % METHODS.len()];
    let header = bearer(secret);
    let (caller, allowed) = auth.check(&request(path, header.as_ref()), None, auth::need(path));
    let nobody = auth.check(&request(path, None), None, auth::need(path));
    match auth::need(path) {
        Some(Need::Open) => {
            assert!(allowed.is_ok(), "{path} is open: {allowed:?}");
            assert_eq!(nobody.0, None);
            assert!(nobody.1.is_ok(), "{path} is open: {:?}", nobody.1);
        }
        _ => {
            assert!(caller.is_some() || allowed.is_err(), "{path}: allowed with no caller");
            assert_eq!(nobody.0, None);
            let status = nobody.1.expect_err("no token, no certificate: refused");
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        }
    }
}

fn config_text(text: &str) {
    let path = scratch(text);
    match RawSettings::from_file(&path) {
        Ok(raw) => {
            let table: toml::Table = text.parse().expect("a file that loads is TOML");
            for key in table.keys() {
                assert!(Setting::find(key).is_some(), "undeclared key {key:?} loaded");
            }
            let _ = raw.resolve();
        }
        Err(ConfigError::UnknownKey { key, .. }) => {
            assert!(Setting::find(&key).is_none(), "declared key {key:?} called unknown")
        }
        Err(_) => {}
    }
}

/// Read and write bits of the scopes (as `AREAS`), or `None` if one is not
/// `AREA:ACCESS`.
fn grants(scopes: &[String]) -> Option<(u8, u8)> {
    let (mut read, mut write) = (0u8, 0u8);
    for text in scopes {
        let colon = text.find(':')?;
        let (area, access) = (&text[..colon], &text[colon + 1..]);
        let bits = match area {
            "*" => 0b11_1111,
            _ => 1 << AREAS.iter().position(|(name, _)| *name == area)?,
        };
        match access {
            "read" => read |= bits,
            "write" => {
                read |= bits;
                write |= bits;
            }
            _ => return None,
        }
    }
    Some((read, write))
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn scopes_toml(scopes: &[String]) -> String {
    toml::Value::Array(scopes.iter().map(|s| toml::Value::String(s.clone())).collect()).to_string()
}

fn tokens_planned(tokens: &[TokenPlan], clients: &[ClientPlan], unknown: &str, method: u8) {
    let mut text = String::new();
    for token in tokens {
        text.push_str(&format!(
            "[[token]]\nname = {}\nsha256 = \"{}\"\nscopes = {}\n\n",
            toml_string(&token.name),
            auth::secret_sha256(&token.secret),
            scopes_toml(&token.scopes)
        ));
    }
    for client in clients {
        text.push_str(&format!(
            "[[client]]\nname = {}\nscopes = {}\n\n",
            toml_string(&client.name),
            scopes_toml(&client.scopes)
        ));
    }
    let secrets_distinct =
        tokens.iter().enumerate().all(|(i, t)| tokens[..i].iter().all(|earlier| earlier.secret != t.secret));
    let scopes_valid = tokens.iter().all(|t| grants(&t.scopes).is_some())
        && clients.iter().all(|c| grants(&c.scopes).is_some());
    // What came before must not matter: a server that served with another
    // token file (here an empty one) and stopped, then loads this one in the
    // same process, answers from this one alone.
    let before = Auth::load(scratch(""), false).expect("an empty token file loads");
    let path = METHODS[usize::from(method) % METHODS.len()];
    if let Some(header) = tokens.first().and_then(|t| bearer(&t.secret)) {
        let _ = before.check(&request(path, Some(&header)), None, auth::need(path));
    }
    drop(before);

    let loaded = Auth::load(scratch(&text), false);
    assert_eq!(loaded.is_ok(), secrets_distinct && scopes_valid, "{loaded:?} for\n{text}");
    let Ok(auth) = loaded else { return };

    let need = auth::need(path);
    // Whether read and write bits let a known caller call `path`.
    let may = |(read, write): (u8, u8)| match need {
        Some(Need::Scope(area, access)) => {
            let bit = 1u8 << AREAS.iter().position(|(_, a)| *a == area).expect("every area is listed");
            let bits = if access == Access::Write { write } else { read };
            bits & bit != 0
        }
        _ => true,
    };
    let expect =
        |who: &str, got: (Option<Caller>, Result<(), tonic::Status>), name: &str, grants: (u8, u8)| {
            let (caller, allowed) = got;
            assert_eq!(caller, Some(Caller(Arc::from(name))), "{who} on {path} in\n{text}");
            match allowed {
                Ok(()) => assert!(may(grants), "{who} may not call {path}, but did, in\n{text}"),
                Err(status) => {
                    assert!(!may(grants), "{who} may call {path}, but was refused: {status:?}, in\n{text}");
                    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
                }
            }
        };
    for token in tokens {
        let Some(header) = bearer(&token.secret) else { continue };
        let got = auth.check(&request(path, Some(&header)), None, need);
        let scopes = grants(&token.scopes).expect("checked above");
        expect(&format!("token {:?}", token.name), got, &token.name, scopes);
    }
    for (i, client) in clients.iter().enumerate() {
        if clients[i + 1..].iter().any(|later| later.name == client.name) {
            continue;
        }
        let peer = Peer { addr: None, certificate_name: Some(Arc::from(client.name.as_str())) };
        let got = auth.check(&request(path, None), Some(&peer), need);
        if need == Some(Need::Open) {
            // Open to all: the call line names the certificate itself.
            assert_eq!(got.0, None, "client {:?} on {path}", client.name);
            assert!(got.1.is_ok(), "{path} is open: {:?}", got.1);
            continue;
        }
        let scopes = grants(&client.scopes).expect("checked above");
        expect(&format!("client {:?}", client.name), got, &client.name, scopes);
    }
    if let Some(header) = bearer(unknown).filter(|_| tokens.iter().all(|t| t.secret != unknown)) {
        let (caller, allowed) = auth.check(&request(path, Some(&header)), None, need);
        assert_eq!(caller, None, "an unknown secret named a caller");
        if need != Some(Need::Open) {
            let status = allowed.expect_err("an unknown secret is refused");
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        }
    }
}

/// `Bearer SECRET`, if it is a header value and names a secret.
fn bearer(secret: &str) -> Option<http::HeaderValue> {
    if secret.is_empty() {
        return None;
    }
    http::HeaderValue::from_str(&format!("Bearer {secret}")).ok()
}

fn request(path: &str, authorization: Option<&http::HeaderValue>) -> http::request::Parts {
    let mut request = http::Request::builder().method(http::Method::POST).uri(path);
    if let Some(value) = authorization {
        request = request.header(http::header::AUTHORIZATION, value);
    }
    request.body(()).expect("a valid request").into_parts().0
}

fn settings(values: &[(&'static str, Value)]) {
    // The last value of each key, as a file would hold it.
    let values: BTreeMap<&'static str, &Value> = values.iter().map(|(key, value)| (*key, value)).collect();
    let mut file = String::new();
    let mut env = Vec::new();
    for (key, value) in &values {
        let (toml, text) = match value {
            Value::Text(s) => (toml::Value::String(s.clone()), s.clone()),
            Value::Integer(i) => (toml::Value::Integer(*i), i.to_string()),
            Value::Float(f) => (toml::Value::Float(*f), f.to_string()),
            Value::Boolean(b) => (toml::Value::Boolean(*b), b.to_string()),
        };
        file.push_str(&format!("{key} = {toml}\n"));
        env.push((env_var(key), text));
    }
    let from_file =
        RawSettings::from_file(&scratch(&file)).unwrap_or_else(|e| panic!("{e}\n{file}")).resolve();
    let from_env = RawSettings::from_env(env).resolve();
    match (&from_file, &from_env) {
        (Ok(file_config), Ok(env_config)) => assert_eq!(file_config, env_config, "{file}"),
        (
            Err(ConfigError::Invalid { key, value, reason, .. }),
            Err(ConfigError::Invalid { key: env_key, value: env_value, reason: env_reason, .. }),
        ) => assert_eq!((key, value, reason), (env_key, env_value, env_reason), "{file}"),
        (Err(ConfigError::Together(a)), Err(ConfigError::Together(b))) => assert_eq!(a, b),
        _ => panic!("from a file {from_file:?}, from the environment {from_env:?}:\n{file}"),
    }
}
