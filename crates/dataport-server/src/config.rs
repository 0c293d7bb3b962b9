//! The server's configuration: one struct, decided in one place.
//!
//! Every setting has a key (`listen`), a config-file entry of the same name, an
//! environment variable (`DATAPORT_LISTEN`) and a flag (`--listen`). A flag
//! beats the environment, which beats the file, which beats the default. Every
//! value is parsed here, before the server binds a port, and a bad one is
//! reported with its key, its value and where it came from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The prefix of every environment variable the server reads.
pub const ENV_PREFIX: &str = "DATAPORT_";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything `dataport serve` needs to start.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Where stored data lives; created when missing.
    pub data_dir: PathBuf,
    /// A JSON features file for RouteGuide; the built-in landmarks when `None`.
    pub features: Option<PathBuf>,
    pub log_format: LogFormat,
    /// How long in-flight calls may run on after a shutdown signal.
    pub shutdown_timeout: Duration,
    /// Move the "default" position around the unit circle, as a demo.
    pub simulate_orbit: bool,
    /// The most position entities kept at once.
    pub max_entities: usize,
    /// The symbol idc.Indicator answers for when a request names none.
    pub default_symbol: Option<String>,
    /// Load the bundled sample bars into an empty bar store at start.
    pub sample_data: bool,
    /// The largest outlier Detect request, in bytes.
    pub max_detect_bytes: usize,
    /// The most series one DetectStream call keeps windows for.
    pub max_stream_series: usize,
    /// The largest trailing window a DetectStream call may ask for.
    pub max_stream_window: usize,
    /// The largest file an upload may store, in bytes.
    pub max_file_size: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("dataport-data"),
            features: None,
            log_format: LogFormat::Text,
            shutdown_timeout: Duration::from_secs(10),
            simulate_orbit: false,
            max_entities: 10_000,
            default_symbol: None,
            sample_data: true,
            max_detect_bytes: 64 * 1024 * 1024,
            max_stream_series: 10_000,
            max_stream_window: 10_000,
            max_file_size: 16 << 30,
        }
    }
}

/// Every key, in the order `--help` and error messages list them.
pub const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "features",
    "log_format",
    "shutdown_timeout",
    "simulate_orbit",
    "max_entities",
    "default_symbol",
    "sample_data",
    "max_detect_bytes",
    "max_stream_series",
    "max_stream_window",
    "max_file_size",
];

const POSITIVE: &str = "expected a whole number of at least 1";

fn positive(value: &str) -> Option<usize> {
    value.parse().ok().filter(|&n| n >= 1)
}

/// A size: plain bytes (`67108864`) or a whole number of KiB, MiB or GiB
/// (`64MiB`, `64 MiB`).
fn bytes(value: &str) -> Option<usize> {
    let value = value.trim();
    let digits = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    let scale: usize = match unit.trim() {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.parse::<usize>().ok()?.checked_mul(scale)
}

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    File(PathBuf),
}

/// A setting that could not be used; its `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("unknown key `{key}` in config file {path} (known keys: {})", KEYS.join(", "))]
    UnknownKey { key: String, path: PathBuf },
    #[error("{key} = {value:?} ({}): {reason}", origin_name(key, origin))]
    Invalid { key: &'static str, value: String, origin: Origin, reason: String },
}

fn origin_name(key: &str, origin: &Origin) -> String {
    match origin {
        Origin::Flag => format!("from --{}", key.replace('_', "-")),
        Origin::Env => format!("from {}", env_var(key)),
        Origin::File(path) => format!("from {}", path.display()),
    }
}

/// The environment variable that sets `key`.
pub fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

/// Settings as given, not yet parsed, keyed by [`KEYS`].
#[derive(Clone, Debug, Default)]
pub struct RawSettings {
    values: BTreeMap<&'static str, (String, Origin)>,
}

impl RawSettings {
    /// Reads a TOML config file whose top-level keys are [`KEYS`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let file_err = |reason: String| ConfigError::File { path: path.to_owned(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let table: toml::Table =
            text.parse().map_err(|e: toml::de::Error| file_err(e.message().to_owned()))?;
        let mut raw = RawSettings::default();
        for (key, value) in table {
            let Some(&known) = KEYS.iter().find(|k| **k == key) else {
                return Err(ConfigError::UnknownKey { key, path: path.to_owned() });
            };
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(file_err(format!(
                        "`{key}` must be a string, number or boolean, not {}",
                        other.type_str()
                    )));
                }
            };
            raw.values.insert(known, (text, Origin::File(path.to_owned())));
        }
        Ok(raw)
    }

    /// Picks the `DATAPORT_*` variables that name a key; others are ignored.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut raw = RawSettings::default();
        for (name, value) in vars {
            if let Some(&key) = KEYS.iter().find(|k| env_var(k) == name) {
                raw.values.insert(key, (value, Origin::Env));
            }
        }
        raw
    }

    /// Records a value given on the command line.
    ///
    /// # Panics
    /// When `key` is not one of [`KEYS`]: flags are declared by the program.
    pub fn set_flag(&mut self, key: &str, value: impl Into<String>) {
        let Some(&key) = KEYS.iter().find(|k| **k == key) else {
            panic!("flag for unknown config key {key}");
        };
        self.values.insert(key, (value.into(), Origin::Flag));
    }

    /// Lays `over` on top of `self`: its values win.
    pub fn overlay(mut self, over: RawSettings) -> Self {
        self.values.extend(over.values);
        self
    }

    /// Parses every value over the defaults.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        for (&key, (value, origin)) in &self.values {
            let invalid = |reason: &dyn fmt::Display| ConfigError::Invalid {
                key,
                value: value.clone(),
                origin: origin.clone(),
                reason: reason.to_string(),
            };
            match key {
                "listen" => {
                    config.listen = value.parse().map_err(|_| {
                        invalid(&"expected an IP address and port, such as 127.0.0.1:50051 or [::]:50051")
                    })?;
                }
                "data_dir" => {
                    config.data_dir = non_empty_path(value).ok_or_else(|| invalid(&"must not be empty"))?
                }
                "features" => {
                    config.features =
                        Some(non_empty_path(value).ok_or_else(|| invalid(&"must not be empty"))?)
                }
                "log_format" => {
                    config.log_format = match value.as_str() {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        _ => return Err(invalid(&"expected `text` or `json`")),
                    };
                }
                "shutdown_timeout" => {
                    config.shutdown_timeout = parse_duration(value).map_err(|e| invalid(&e))?
                }
                "simulate_orbit" => {
                    config.simulate_orbit =
                        parse_bool(value).ok_or_else(|| invalid(&"expected true or false"))?
                }
                "max_entities" => config.max_entities = positive(value).ok_or_else(|| invalid(&POSITIVE))?,
                "max_stream_series" => {
                    config.max_stream_series = positive(value).ok_or_else(|| invalid(&POSITIVE))?
                }
                "max_stream_window" => {
                    config.max_stream_window = positive(value).ok_or_else(|| invalid(&POSITIVE))?
                }
                "max_detect_bytes" => {
                    config.max_detect_bytes = bytes(value).filter(|&n| n >= 1024).ok_or_else(|| {
                        invalid(&"expected a size of at least 1 KiB: bytes, or a number with KiB, MiB or GiB")
                    })?
                }
                "max_file_size" => config.max_file_size =
                    bytes(value).filter(|&n| n >= 1).map(|n| n as u64).ok_or_else(|| {
                        invalid(
                            &"expected a size of at least 1 byte: bytes, or a number with KiB, MiB or GiB",
                        )
                    })?,
                "default_symbol" => {
                    dataport_core::market::bars::validate_symbol(value).map_err(|e| invalid(&e))?;
                    config.default_symbol = Some(value.clone());
                }
                "sample_data" => {
                    config.sample_data =
                        parse_bool(value).ok_or_else(|| invalid(&"expected true or false"))?;
                }
                _ => unreachable!("every key in KEYS is handled above; {key} is not"),
            }
        }
        Ok(config)
    }
}

fn non_empty_path(value: &str) -> Option<PathBuf> {
    (!value.is_empty()).then(|| PathBuf::from(value))
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses `10`, `2.5`, `10s` or `500ms` (a bare number is seconds).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else {
        (value, 1.0)
    };
    let expected = "expected seconds such as 10, 2.5, 10s or 500ms";
    let n: f64 = number.trim().parse().map_err(|_| expected.to_owned())?;
    Duration::try_from_secs_f64(n * scale).map_err(|_| format!("{expected}, not negative or out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> RawSettings {
        RawSettings::from_env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn sizes_take_bytes_or_binary_units() {
        let size = |v: &str| env(&[("DATAPORT_MAX_DETECT_BYTES", v)]).resolve().map(|c| c.max_detect_bytes);
        assert_eq!(size("67108864").unwrap(), 64 << 20);
        assert_eq!(size("64MiB").unwrap(), 64 << 20);
        assert_eq!(size("1 GiB").unwrap(), 1 << 30);
        assert_eq!(size("512KiB").unwrap(), 512 << 10);
        for bad in ["", "64MB", "1.5MiB", "-1", "1023", "MiB", "99999999999GiB"] {
            let e = size(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("max_detect_bytes = {bad:?} (from DATAPORT_MAX_DETECT_BYTES)")),
                "{e}"
            );
        }
        let e = env(&[("DATAPORT_MAX_STREAM_SERIES", "0")]).resolve().unwrap_err().to_string();
        assert!(e.contains("at least 1"), "{e}");
        let file_size = |v: &str| env(&[("DATAPORT_MAX_FILE_SIZE", v)]).resolve().map(|c| c.max_file_size);
        assert_eq!(file_size("20GiB").unwrap(), 20 << 30);
        assert_eq!(file_size("1").unwrap(), 1);
        let e = file_size("0").unwrap_err().to_string();
        assert!(e.starts_with("max_file_size = \"0\" (from DATAPORT_MAX_FILE_SIZE)"), "{e}");
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        assert_eq!(RawSettings::default().resolve().expect("defaults are valid"), Config::default());
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("dataport.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1\"\ndata_dir = \"from-file\"\nlog_format = \"json\"\nshutdown_timeout = 3\n")
            .expect("write");
        let from_file = RawSettings::from_file(&file).expect("parses");
        let from_env =
            env(&[("DATAPORT_LISTEN", "127.0.0.1:2"), ("DATAPORT_DATA_DIR", "from-env"), ("PATH", "/bin")]);
        let mut flags = RawSettings::default();
        flags.set_flag("listen", "127.0.0.1:3");
        let config = from_file.overlay(from_env).overlay(flags).resolve().expect("valid");
        assert_eq!(config.listen, "127.0.0.1:3".parse().expect("addr"));
        assert_eq!(config.data_dir, PathBuf::from("from-env"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(3));
        assert!(!config.simulate_orbit);
    }

    #[test]
    fn bad_values_name_key_value_and_origin() {
        let e = env(&[("DATAPORT_LISTEN", "nowhere")]).resolve().unwrap_err();
        assert_eq!(
            e.to_string(),
            "listen = \"nowhere\" (from DATAPORT_LISTEN): expected an IP address and port, such as 127.0.0.1:50051 or [::]:50051"
        );
        let mut flags = RawSettings::default();
        flags.set_flag("shutdown_timeout", "-1");
        let e = flags.resolve().unwrap_err().to_string();
        assert!(
            e.starts_with("shutdown_timeout = \"-1\" (from --shutdown-timeout): expected seconds"),
            "{e}"
        );
        let e = env(&[("DATAPORT_LOG_FORMAT", "xml")]).resolve().unwrap_err().to_string();
        assert_eq!(e, "log_format = \"xml\" (from DATAPORT_LOG_FORMAT): expected `text` or `json`");
        let e = env(&[("DATAPORT_MAX_ENTITIES", "0")]).resolve().unwrap_err().to_string();
        assert!(e.contains("max_entities = \"0\""), "{e}");
        let e = env(&[("DATAPORT_SIMULATE_ORBIT", "maybe")]).resolve().unwrap_err().to_string();
        assert!(e.contains("simulate_orbit = \"maybe\""), "{e}");
        let e = env(&[("DATAPORT_DATA_DIR", "")]).resolve().unwrap_err().to_string();
        assert!(e.contains("data_dir = \"\""), "{e}");
        let e = env(&[("DATAPORT_DEFAULT_SYMBOL", "A B")]).resolve().unwrap_err().to_string();
        assert!(e.starts_with("default_symbol = \"A B\" (from DATAPORT_DEFAULT_SYMBOL): symbol"), "{e}");
        let e = env(&[("DATAPORT_SAMPLE_DATA", "nope")]).resolve().unwrap_err().to_string();
        assert!(e.contains("sample_data = \"nope\""), "{e}");
    }

    #[test]
    fn config_file_errors_are_one_line_and_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "listne = \"x\"\n").expect("write");
        let e = RawSettings::from_file(&file).unwrap_err().to_string();
        assert!(e.starts_with("unknown key `listne` in config file") && e.contains("listen"), "{e}");
        std::fs::write(&file, "listen = [1]\n").expect("write");
        let e = RawSettings::from_file(&file).unwrap_err().to_string();
        assert!(e.contains("`listen` must be a string, number or boolean, not array"), "{e}");
        std::fs::write(&file, "listen = \n").expect("write");
        let e = RawSettings::from_file(&file).unwrap_err().to_string();
        assert!(e.starts_with("config file") && !e.contains('\n'), "{e}");
        let e = RawSettings::from_file(&dir.path().join("missing.toml")).unwrap_err().to_string();
        assert!(e.contains("missing.toml"), "{e}");
        std::fs::write(&file, "shutdown_timeout = \"soon\"\n").expect("write");
        let e = RawSettings::from_file(&file).expect("parses").resolve().unwrap_err().to_string();
        assert!(e.starts_with("shutdown_timeout = \"soon\" (from ") && e.contains("bad.toml"), "{e}");
    }

    #[test]
    fn durations_accept_seconds_and_milliseconds() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1").is_err());
    }
}
