//! `dataport serve`: settle the configuration, then run the server until
//! SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use dataport_server::Server;
use dataport_server::config::{self, RawSettings};
use dataport_server::logging;

/// Flags of `dataport serve`. Each also has a config-file key (the flag's
/// name with underscores) and a `DATAPORT_*` variable; flags win.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A TOML config file [env: DATAPORT_CONFIG]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:50051]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Where stored data lives, created if missing [default: ./dataport-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// RouteGuide features in the JSON shape of route_guide_db.json [default: built-in landmarks]
    #[arg(long, value_name = "FILE")]
    features: Option<String>,
    /// text or json [default: text]
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// How long in-flight calls may finish after SIGINT/SIGTERM, e.g. 10s or 500ms [default: 10s]
    #[arg(long, value_name = "DURATION")]
    shutdown_timeout: Option<String>,
    /// Move the "default" position around the unit circle (5 degrees every 100 ms)
    #[arg(long)]
    simulate_orbit: bool,
    /// The most position entities kept at once [default: 10000]
    #[arg(long, value_name = "N")]
    max_entities: Option<String>,
    /// The symbol idc.Indicator answers for when a request names none
    #[arg(long, value_name = "SYMBOL")]
    default_symbol: Option<String>,
    /// Do not load the bundled sample bars into an empty bar store
    #[arg(long)]
    no_sample_data: bool,
    /// The largest outlier Detect request, e.g. 64MiB [default: 64MiB]
    #[arg(long, value_name = "SIZE")]
    max_detect_bytes: Option<String>,
    /// The most series one DetectStream call keeps windows for [default: 10000]
    #[arg(long, value_name = "N")]
    max_stream_series: Option<String>,
    /// The largest window a DetectStream call may ask for [default: 10000]
    #[arg(long, value_name = "N")]
    max_stream_window: Option<String>,
    /// The largest file an upload may store, e.g. 2GiB [default: 16GiB]
    #[arg(long, value_name = "SIZE")]
    max_file_size: Option<String>,
}

impl ServeArgs {
    fn flags(&self) -> RawSettings {
        let mut raw = RawSettings::default();
        let given = [
            ("listen", &self.listen),
            ("data_dir", &self.data_dir),
            ("features", &self.features),
            ("log_format", &self.log_format),
            ("shutdown_timeout", &self.shutdown_timeout),
            ("max_entities", &self.max_entities),
            ("default_symbol", &self.default_symbol),
            ("max_detect_bytes", &self.max_detect_bytes),
            ("max_stream_series", &self.max_stream_series),
            ("max_stream_window", &self.max_stream_window),
            ("max_file_size", &self.max_file_size),
        ];
        for (key, value) in given {
            if let Some(value) = value {
                raw.set_flag(key, value.clone());
            }
        }
        if self.simulate_orbit {
            raw.set_flag("simulate_orbit", "true");
        }
        if self.no_sample_data {
            raw.set_flag("sample_data", "false");
        }
        raw
    }
}

/// Runs the server; every failure to start is one line on stderr and exit 2.
pub fn main(args: ServeArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dataport serve: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: ServeArgs) -> Result<(), String> {
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let config_file = args.config.clone().or_else(|| {
        let var = config::env_var("config");
        env.iter().find(|(k, _)| *k == var).map(|(_, v)| PathBuf::from(v))
    });
    let file = match &config_file {
        Some(path) => RawSettings::from_file(path).map_err(|e| e.to_string())?,
        None => RawSettings::default(),
    };
    let config = file
        .overlay(RawSettings::from_env(env))
        .overlay(args.flags())
        .resolve()
        .map_err(|e| e.to_string())?;
    let listen = config.listen;
    // Before the server is built, so that what it does at start is logged.
    let _log = logging::init(config.log_format).map_err(|e| format!("cannot start the log writer: {e}"))?;
    let server = Server::new(config).map_err(|e| e.to_string())?;

    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("listen = \"{listen}\": cannot bind: {e}"))?;
        server.run(listener, shutdown_signal()).await.map_err(|e| e.to_string())
    })
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
