//! The server's configuration: every setting declared once, decided in one
//! place.
//!
//! [`settings!`] below is the only list of settings. Each entry gives a key
//! (`listen`), the type of its [`Config`] field, its default, its doc (the
//! `--help` line and the README's "meaning"), how a flag gives it and the
//! function that parses its text. From that one entry come the field, the
//! default, the config-file key of the same name, the environment variable
//! (`DATAPORT_LISTEN`), the flag (`--listen`, built by the binary from
//! [`SETTINGS`]) and the README's row ([`readme_table`]). Adding a key is one
//! entry here plus its use.
//!
//! A flag beats the environment, which beats the file, which beats the
//! default ([`RawSettings`]). Every value is parsed here, before the server
//! binds a port, and a bad one is reported in one line with its key, its
//! value and where it came from.

mod parse;
mod raw;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use parse::parse_duration;
pub use raw::{ConfigError, Origin, RawSettings};

/// The prefix of every environment variable the server reads.
pub const ENV_PREFIX: &str = "DATAPORT_";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A URL that may carry a password (`postgres://user:secret@host/db`): its
/// `Debug` and `Display` leave the password out, so logs and errors never
/// show it; [`SecretUrl::expose`] gives it whole to the one who connects.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&parse::without_password(&self.0))
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", parse::without_password(&self.0))
    }
}

/// How responses are compressed for a client that accepts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseCompression {
    None,
    Gzip,
    Zstd,
}

/// Declares every setting: `doc key: Type = default, flag, parser;`.
///
/// The default is the text the parser is given (`"10s"`), or `unset "words"`
/// for an `Option` that is `None` unless set (the words say what that means).
/// The flag is `value "NAME"` (`--key NAME`), `switch` (`--key` sets true) or
/// `negated` (`--no-key` sets false; its help reads "do not <doc>", so the doc
/// starts with a verb). The parser is a `fn(&str) -> Result<Type, String>`
/// whose error is the reason shown after the key, value and origin. The doc
/// is the `--help` text and the README's "meaning", in one line.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $key:ident: $ty:ty = $($unset:ident)? $default:literal,
            $flag:ident $($value_name:literal)?, $parse:expr;
    )+) => {
        /// Everything `dataport serve` needs to start.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $key: $ty, )+
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $( $key: settings!(@default $key, $parse, $($unset)? $default), )+ }
            }
        }

        /// Every setting, in the order `--help`, the README and errors list them.
        pub static SETTINGS: &[Setting] = &[$(
            Setting {
                key: stringify!($key),
                doc: concat!($($doc),+),
                default: settings!(@shown $($unset)? $default),
                flag: settings!(@flag $flag $($value_name)?),
                apply: |config, value| {
                    config.$key = ($parse)(value)?;
                    Ok(())
                },
            },
        )+];
    };
    (@default $key:ident, $parse:expr, unset $shown:literal) => { Default::default() };
    (@default $key:ident, $parse:expr, $default:literal) => {
        match ($parse)($default) {
            Ok(value) => value,
            Err(reason) => panic!("the declared default of {} is invalid: {reason}", stringify!($key)),
        }
    };
    (@shown unset $shown:literal) => { Shown::Unset($shown) };
    (@shown $default:literal) => { Shown::Value($default) };
    (@flag value $name:literal) => { Flag::Value($name) };
    (@flag switch) => { Flag::Switch };
    (@flag negated) => { Flag::Negated };
}

settings! {
    /// address to listen on
    listen: SocketAddr = "127.0.0.1:50051", value "ADDR", parse::listen;
    /// stored data; created if missing, locked against a second server
    data_dir: PathBuf = "dataport-data", value "DIR", parse::path;
    /// RouteGuide features, JSON as in grpc's `route_guide_db.json`
    features: Option<PathBuf> = unset "built-in landmarks", value "FILE", |v| parse::path(v).map(Some);
    /// keep the bars in this PostgreSQL database (`postgres://USER:PASSWORD@HOST:PORT/DB`; TLS with
    /// `?sslmode=verify-full&sslrootcert=CA.pem`), shared by every replica, instead of SQLite in the
    /// data directory
    bars_url: Option<SecretUrl> = unset "none (SQLite in data_dir)", value "URL", |v| parse::postgres_url(v).map(Some);
    /// keep stored files in this S3 bucket (`s3://BUCKET/PREFIX`), shared by every replica, instead
    /// of the data directory; endpoint, region and keys from the `AWS_*` environment variables
    files_url: Option<String> = unset "none (files in data_dir)", value "URL", |v| parse::s3_url(v).map(Some);
    /// most connections to the `bars_url` database held at once
    bars_pool_size: usize = "8", value "N", parse::positive;
    /// `text` or `json`
    log_format: LogFormat = "text", value "FORMAT",
        |v| parse::one_of(v, &[("text", LogFormat::Text), ("json", LogFormat::Json)]);
    /// how long in-flight calls may finish after SIGINT/SIGTERM (`10`, `2.5s`, `500ms`)
    shutdown_timeout: Duration = "10s", value "DURATION", parse::parse_duration;
    /// move `default` around the unit circle, 5° every 100 ms
    simulate_orbit: bool = "false", switch, parse::boolean;
    /// most position entities kept; past it RESOURCE_EXHAUSTED
    max_entities: usize = "10000", value "N", parse::positive;
    /// the symbol GetMACD and GetMACDGraph answer for when a request names none
    default_symbol: Option<String> = unset "none", value "SYMBOL", parse::symbol;
    /// load the bundled sample bars into a new bar store (once: removing its symbols keeps them gone)
    sample_data: bool = "true", negated, parse::boolean;
    /// answer GetMACD and GetMACDGraph over split-adjusted prices, as the v1 market API does by default
    compat_adjusted: bool = "false", switch, parse::boolean;
    /// largest outlier Detect request (bytes, or KiB/MiB/GiB); past it RESOURCE_EXHAUSTED naming the limit
    max_detect_bytes: usize = "64MiB", value "SIZE", |v| parse::size(v, 1 << 10, "1 KiB");
    /// most series one DetectStream call keeps windows for; past it RESOURCE_EXHAUSTED
    max_stream_series: usize = "10000", value "N", parse::positive;
    /// largest trailing window a DetectStream call may ask for
    max_stream_window: usize = "10000", value "N", parse::positive;
    /// largest file an upload may store (bytes, or KiB/MiB/GiB); past it RESOURCE_EXHAUSTED, nothing stored
    max_file_size: u64 = "16GiB", value "SIZE", |v| parse::size(v, 1, "1 byte").map(|n| n as u64);
    /// largest request message any RPC but Detect accepts (bytes, or KiB/MiB/GiB); past it
    /// RESOURCE_EXHAUSTED naming the limit
    max_message_size: usize = "4MiB", value "SIZE", |v| parse::size(v, 1, "1 byte");
    /// TLS certificate chain, PEM, leaf first; with `tls_key` the port speaks only TLS 1.2/1.3
    /// (reloaded when the file changes or on SIGHUP)
    tls_cert: Option<PathBuf> = unset "none (plaintext)", value "FILE", |v| parse::path(v).map(Some);
    /// private key of `tls_cert`, PEM (PKCS#8, PKCS#1 or SEC1)
    tls_key: Option<PathBuf> = unset "none", value "FILE", |v| parse::path(v).map(Some);
    /// CA certificates, PEM: clients must show a certificate signed by one (mutual TLS); its CN,
    /// else first SAN, names the caller
    tls_client_ca: Option<PathBuf> = unset "none", value "FILE", |v| parse::path(v).map(Some);
    /// token file (TOML `[[token]]` and `[[client]]` entries with scopes): every call but health
    /// needs a known caller (reloaded when the file changes or on SIGHUP)
    auth_tokens: Option<PathBuf> = unset "none (no auth)", value "FILE", |v| parse::path(v).map(Some);
    /// let reflection answer callers without a token when `auth_tokens` is set
    reflection_public: bool = "false", switch, parse::boolean;
    /// serve a non-loopback address without TLS and auth (refused otherwise): a warning at start
    insecure: bool = "false", switch, parse::boolean;
    /// serve gRPC-Web too (unary and server-streaming calls from browsers, HTTP/1.1 or HTTP/2)
    grpc_web: bool = "false", switch, parse::boolean;
    /// origins whose pages may call over gRPC-Web, comma-separated (`https://app.example.com`), or `*`
    cors_allowed_origins: Vec<http::HeaderValue> = unset "none", value "ORIGINS", parse::origins;
    /// also serve the health service alone here, in plaintext and open to all (for probes that
    /// speak neither TLS nor tokens, such as Kubernetes' gRPC probes)
    health_listen: Option<SocketAddr> = unset "none", value "ADDR", |v| parse::listen(v).map(Some);
    /// serve Prometheus metrics at `http://ADDR/metrics` (plaintext, open to all: keep it on a
    /// private address)
    metrics_listen: Option<SocketAddr> = unset "none", value "ADDR", |v| parse::listen(v).map(Some);
    /// send a span per call to this OpenTelemetry collector over OTLP/gRPC (`http://HOST:4317`,
    /// or `https://`); a call's `traceparent` is continued
    otlp_endpoint: Option<String> = unset "none", value "URL", |v| parse::otlp_endpoint(v).map(Some);
    /// share of the calls without a `traceparent` whose spans are sent (0 to 1); a call with one
    /// is sent as its caller sampled it
    otlp_sample_ratio: f64 = "1", value "RATIO", parse::ratio;
    /// most request data held at once across calls (Detect batches, imports, upload pieces; bytes,
    /// KiB/MiB/GiB, or `auto`: a quarter of the memory); past it a call waits up to 1 s for room,
    /// then is refused RESOURCE_EXHAUSTED
    max_inflight_bytes: usize = "auto", value "SIZE", parse::inflight_bytes;
    /// most calls under way at once (health's aside); past it a call is refused UNAVAILABLE at once
    max_calls: usize = "2000", value "N", parse::positive;
    /// how long a new connection may take to send the HTTP/2 preface (and to finish a TLS handshake)
    handshake_timeout: Duration = "5s", value "DURATION", parse::parse_duration;
    /// most connections open at once; a new one past it is closed at once
    max_connections: usize = "10000", value "N", parse::positive;
    /// tell a connection with no call under way for this long to close (GOAWAY), or `never`
    max_connection_idle: Option<Duration> = "1h", value "DURATION", parse::duration_or_never;
    /// tell a connection this old to close (GOAWAY), so load balancers can rebalance; or `never`
    max_connection_age: Option<Duration> = "never", value "DURATION", parse::duration_or_never;
    /// how long calls may go on after `max_connection_age` before their connection is closed
    max_connection_age_grace: Duration = "30s", value "DURATION", parse::parse_duration;
    /// most calls under way at once on one connection (HTTP/2 max concurrent streams)
    max_concurrent_streams: u32 = "1000", value "N", parse::positive_u32;
    /// ping a connection quiet for this long (HTTP/2 PING), or `never` (TCP keepalive still runs)
    keepalive_interval: Option<Duration> = "never", value "DURATION", parse::duration_or_never;
    /// close a connection whose answer to a keepalive ping takes longer than this
    keepalive_timeout: Duration = "20s", value "DURATION", parse::parse_duration;
    /// compress responses with this when the client accepts it; file data is never compressed
    response_compression: ResponseCompression = "none", value "CODEC",
        |v| parse::one_of(v, &[
            ("none", ResponseCompression::None),
            ("gzip", ResponseCompression::Gzip),
            ("zstd", ResponseCompression::Zstd),
        ]);
}

impl Config {
    /// The bounds of every connection, from the config.
    pub(crate) fn connection_limits(&self) -> crate::connections::Limits {
        let c = self;
        crate::connections::Limits {
            max_calls: c.max_calls,
            handshake_timeout: c.handshake_timeout,
            max_connections: c.max_connections,
            max_connection_idle: c.max_connection_idle,
            max_connection_age: c.max_connection_age,
            max_connection_age_grace: c.max_connection_age_grace,
            max_concurrent_streams: c.max_concurrent_streams,
            keepalive_interval: c.keepalive_interval,
            keepalive_timeout: c.keepalive_timeout,
        }
    }
}

/// One declared setting: what the binary builds its flag from, and what
/// the README's table shows.
#[derive(Debug)]
pub struct Setting {
    /// The config-file key, and the field of [`Config`].
    pub key: &'static str,
    doc: &'static str,
    /// The default, as `--help` and the README show it.
    pub default: Shown,
    /// How the command line gives it.
    pub flag: Flag,
    apply: fn(&mut Config, &str) -> Result<(), String>,
}

/// A default as shown to people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// The text the setting parses to its default (`10s`).
    Value(&'static str),
    /// Unset by default; the words say what that means (`built-in landmarks`).
    Unset(&'static str),
}

/// How a setting appears on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// `--key VALUE`, with this value name in `--help`.
    Value(&'static str),
    /// `--key` alone sets it to true.
    Switch,
    /// `--no-key` alone sets it to false.
    Negated,
}

impl Setting {
    /// What the setting does, in one line.
    pub fn doc(&self) -> &'static str {
        self.doc.trim()
    }

    /// The environment variable that sets it.
    pub fn env_var(&self) -> String {
        env_var(self.key)
    }

    /// The flag's long name, without the dashes in front.
    pub fn flag_name(&self) -> String {
        let name = self.key.replace('_', "-");
        match self.flag {
            Flag::Negated => format!("no-{name}"),
            Flag::Value(_) | Flag::Switch => name,
        }
    }

    /// The declared setting named `key`.
    pub fn find(key: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.key == key)
    }

    /// Parses `value` into this setting's field of `config`; the error is
    /// the reason it was refused.
    fn apply(&self, config: &mut Config, value: &str) -> Result<(), String> {
        (self.apply)(config, value)
    }
}

/// The environment variable that sets `key`.
pub fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

/// The README's configuration table, one row per setting.
pub fn readme_table() -> String {
    let mut table =
        String::from("| key | flag | env | default | meaning |\n| --- | --- | --- | --- | --- |\n");
    for s in SETTINGS {
        let flag = match s.flag {
            Flag::Value(_) | Flag::Switch => format!("`--{}`", s.flag_name()),
            Flag::Negated => format!("`--{}` (sets false)", s.flag_name()),
        };
        let default = match s.default {
            Shown::Value(text) => format!("`{text}`"),
            Shown::Unset(words) => words.to_owned(),
        };
        let meaning = s.doc().replace('|', "\\|");
        table.push_str(&format!("| `{}` | {flag} | `{}` | {default} | {meaning} |\n", s.key, s.env_var()));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_default_parses_to_the_default_config() {
        let mut config = Config::default();
        for s in SETTINGS {
            if let Shown::Value(text) = s.default {
                s.apply(&mut config, text).unwrap_or_else(|e| panic!("{}: {e}", s.key));
            }
        }
        assert_eq!(config, Config::default());
        let config = Config::default();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 50051)));
        assert_eq!(config.data_dir, PathBuf::from("dataport-data"));
        assert_eq!(config.features, None);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(config.max_detect_bytes, 64 << 20);
        assert_eq!(config.max_file_size, 16 << 30);
        assert_eq!(config.max_message_size, 4 << 20);
        assert_eq!(config.response_compression, ResponseCompression::None);
        assert!(config.sample_data && !config.simulate_orbit);
    }

    #[test]
    fn keys_are_unique_and_lower_snake_case() {
        let mut keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        assert!(keys.iter().all(|k| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')), "{keys:?}");
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), SETTINGS.len());
        // `config` names the file itself (--config, DATAPORT_CONFIG).
        assert!(Setting::find("config").is_none());
    }

    #[test]
    fn switches_parse_true_and_false_and_names_follow_the_key() {
        let config = Config::default();
        for s in SETTINGS {
            if matches!(s.flag, Flag::Switch | Flag::Negated) {
                let mut set = config.clone();
                s.apply(&mut set, "true").unwrap_or_else(|e| panic!("{}: {e}", s.key));
                s.apply(&mut set, "false").unwrap_or_else(|e| panic!("{}: {e}", s.key));
            }
        }
        assert_eq!(Setting::find("simulate_orbit").map(|s| s.flag_name()).as_deref(), Some("simulate-orbit"));
        assert_eq!(Setting::find("sample_data").map(|s| s.flag_name()).as_deref(), Some("no-sample-data"));
        assert_eq!(
            Setting::find("max_file_size").map(|s| s.env_var()).as_deref(),
            Some("DATAPORT_MAX_FILE_SIZE")
        );
    }

    /// The README documents exactly the declared settings. When this fails,
    /// replace the README's table with the one printed.
    #[test]
    fn readme_table_matches_the_declaration() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(path).expect("README.md is readable");
        let start =
            readme.find("| key | flag | env | default | meaning |").expect("README has the config table");
        let table: String = readme[start..]
            .lines()
            .take_while(|line| line.starts_with('|'))
            .flat_map(|line| [line, "\n"])
            .collect();
        let expected = readme_table();
        assert!(
            table == expected,
            "README.md's config table differs from the declaration; it should be:\n{expected}"
        );
    }
}
