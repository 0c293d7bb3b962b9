//! Settings as given (file, environment, flags), layered, then parsed into a
//! [`Config`] with errors that say which value from where.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Config, SETTINGS, Setting, env_var};

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
    #[error("unknown key `{key}` in config file {path} (known keys: {})", known_keys())]
    UnknownKey { key: String, path: PathBuf },
    #[error("{key} = {value:?} ({}): {reason}", origin_name(key, origin))]
    Invalid { key: &'static str, value: String, origin: Origin, reason: String },
    #[error("{0}")]
    Together(&'static str),
}

fn known_keys() -> String {
    SETTINGS.iter().map(|s| s.key).collect::<Vec<_>>().join(", ")
}

fn origin_name(key: &str, origin: &Origin) -> String {
    match origin {
        Origin::Flag => match Setting::find(key) {
            Some(setting) => format!("from --{}", setting.flag_name()),
            None => format!("from --{}", key.replace('_', "-")),
        },
        Origin::Env => format!("from {}", env_var(key)),
        Origin::File(path) => format!("from {}", path.display()),
    }
}

/// Settings as given, not yet parsed, keyed by the declared keys.
#[derive(Clone, Debug, Default)]
pub struct RawSettings {
    values: BTreeMap<&'static str, (String, Origin)>,
}

impl RawSettings {
    /// Reads a TOML config file whose top-level keys are declared keys.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let file_err = |reason: String| ConfigError::File { path: path.to_owned(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let table: toml::Table =
            text.parse().map_err(|e: toml::de::Error| file_err(e.message().to_owned()))?;
        let mut raw = RawSettings::default();
        for (key, value) in table {
            let Some(setting) = Setting::find(&key) else {
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
            raw.values.insert(setting.key, (text, Origin::File(path.to_owned())));
        }
        Ok(raw)
    }

    /// Picks the `DATAPORT_*` variables that name a key; others are ignored.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut raw = RawSettings::default();
        for (name, value) in vars {
            if let Some(setting) = SETTINGS.iter().find(|s| s.env_var() == name) {
                raw.values.insert(setting.key, (value, Origin::Env));
            }
        }
        raw
    }

    /// Records a value given on the command line.
    ///
    /// # Panics
    /// When `key` is not declared: flags are built from the declaration.
    pub fn set_flag(&mut self, key: &str, value: impl Into<String>) {
        let Some(setting) = Setting::find(key) else {
            panic!("flag for undeclared config key {key}");
        };
        self.values.insert(setting.key, (value.into(), Origin::Flag));
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
            let Some(setting) = Setting::find(key) else {
                unreachable!("only declared keys are recorded; {key} is not");
            };
            setting.apply(&mut config, value).map_err(|reason| ConfigError::Invalid {
                key,
                value: super::parse::without_password(value),
                origin: origin.clone(),
                reason,
            })?;
        }
        match (&config.tls_cert, &config.tls_key, &config.tls_client_ca) {
            (Some(_), None, _) => Err(ConfigError::Together("tls_cert is set but tls_key is not: give both")),
            (None, Some(_), _) => Err(ConfigError::Together("tls_key is set but tls_cert is not: give both")),
            (None, None, Some(_)) => {
                Err(ConfigError::Together("tls_client_ca needs TLS: set tls_cert and tls_key too"))
            }
            _ => Ok(config),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{LogFormat, ResponseCompression};

    fn env(pairs: &[(&str, &str)]) -> RawSettings {
        RawSettings::from_env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn tls_files_come_together() {
        let resolve = |pairs: &[(&str, &str)]| env(pairs).resolve().map_err(|e| e.to_string());
        let cert = ("DATAPORT_TLS_CERT", "server.pem");
        let key = ("DATAPORT_TLS_KEY", "server.key");
        let ca = ("DATAPORT_TLS_CLIENT_CA", "ca.pem");
        assert!(resolve(&[cert, key]).is_ok());
        assert!(resolve(&[cert, key, ca]).is_ok());
        assert_eq!(resolve(&[cert]).unwrap_err(), "tls_cert is set but tls_key is not: give both");
        assert_eq!(resolve(&[key, ca]).unwrap_err(), "tls_key is set but tls_cert is not: give both");
        assert_eq!(resolve(&[ca]).unwrap_err(), "tls_client_ca needs TLS: set tls_cert and tls_key too");
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
            e.starts_with("shutdown_timeout = \"-1\" (from --shutdown-timeout): expected a duration"),
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
    fn a_negated_flag_is_named_as_typed() {
        let mut flags = RawSettings::default();
        flags.set_flag("sample_data", "maybe");
        let e = flags.resolve().unwrap_err().to_string();
        assert_eq!(e, "sample_data = \"maybe\" (from --no-sample-data): expected true or false");
    }

    #[test]
    fn config_file_errors_are_one_line_and_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "listne = \"x\"\n").expect("write");
        let e = RawSettings::from_file(&file).unwrap_err().to_string();
        assert!(e.starts_with("unknown key `listne` in config file") && e.contains("listen"), "{e}");
        assert!(e.contains("max_message_size") && e.contains("response_compression"), "{e}");
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

    /// `key` from a file (`file`, TOML), then overlaid by `DATAPORT_<KEY>`
    /// (`env_value`), then by its flag (`flag`): the three configs.
    fn file_env_flag(key: &str, [file, env_value, flag]: [&str; 3]) -> [Config; 3] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dataport.toml");
        std::fs::write(&path, format!("{key} = {file}\n")).expect("write");
        let from_file = RawSettings::from_file(&path).expect("parses");
        let from_env = env(&[(&format!("DATAPORT_{}", key.to_uppercase()), env_value)]);
        let mut flags = RawSettings::default();
        flags.set_flag(key, flag);
        [
            from_file.clone().resolve().unwrap(),
            from_file.clone().overlay(from_env.clone()).resolve().unwrap(),
            from_file.overlay(from_env).overlay(flags).resolve().unwrap(),
        ]
    }

    #[test]
    fn response_compression_from_file_env_and_flag() {
        let configs = file_env_flag("response_compression", ["\"gzip\"", "zstd", "none"]);
        let got = configs.map(|c| c.response_compression);
        assert_eq!(got, [ResponseCompression::Gzip, ResponseCompression::Zstd, ResponseCompression::None]);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("dataport.toml");

        let e = env(&[("DATAPORT_RESPONSE_COMPRESSION", "br")]).resolve().unwrap_err().to_string();
        assert_eq!(
            e,
            "response_compression = \"br\" (from DATAPORT_RESPONSE_COMPRESSION): expected `none`, `gzip` or `zstd`"
        );
        std::fs::write(&file, "response_compression = \"GZIP\"\n").expect("write");
        let e = RawSettings::from_file(&file).expect("parses").resolve().unwrap_err().to_string();
        assert!(
            e.starts_with("response_compression = \"GZIP\" (from ") && e.contains("dataport.toml"),
            "{e}"
        );
    }

    #[test]
    fn max_message_size_from_file_env_and_flag() {
        let configs = file_env_flag("max_message_size", ["1048576", "16MiB", "512 KiB"]);
        assert_eq!(configs.map(|c| c.max_message_size), [1 << 20, 16 << 20, 512 << 10]);
        assert_eq!(env(&[("DATAPORT_MAX_MESSAGE_SIZE", "1")]).resolve().unwrap().max_message_size, 1);

        let mut flags = RawSettings::default();
        flags.set_flag("max_message_size", "0");
        let e = flags.resolve().unwrap_err().to_string();
        assert_eq!(
            e,
            "max_message_size = \"0\" (from --max-message-size): expected a size of at least 1 byte: bytes, or a number with KiB, MiB or GiB"
        );
        for bad in ["4MB", "-1", "0MiB", "four"] {
            let e = env(&[("DATAPORT_MAX_MESSAGE_SIZE", bad)]).resolve().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("max_message_size = {bad:?} (from DATAPORT_MAX_MESSAGE_SIZE)")),
                "{e}"
            );
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("dataport.toml");
        std::fs::write(&file, "max_message_size = 0\n").expect("write");
        let e = RawSettings::from_file(&file).expect("parses").resolve().unwrap_err().to_string();
        assert!(e.starts_with("max_message_size = \"0\" (from ") && e.contains("dataport.toml"), "{e}");
    }
}
