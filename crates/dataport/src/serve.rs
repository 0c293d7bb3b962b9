//! `dataport serve`: settle the configuration, then run the server until
//! SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches};
use dataport_server::Server;
use dataport_server::config::{self, Flag, RawSettings, SETTINGS, Setting, Shown};
use dataport_server::logging;

/// Arguments of `dataport serve`: a config file, and a flag for every
/// declared setting ([`SETTINGS`]), which also has a config-file key and a
/// `DATAPORT_*` variable; flags win.
#[derive(Debug)]
pub struct ServeArgs {
    config: Option<PathBuf>,
    flags: RawSettings,
}

const CONFIG: &str = "config";

/// The flag of one declared setting; its help is the setting's doc.
fn flag(setting: &Setting) -> Arg {
    let (doc, key, env) = (setting.doc(), setting.key, setting.env_var());
    let arg = Arg::new(key).long(setting.flag_name());
    match setting.flag {
        Flag::Value(name) => {
            let (Shown::Value(default) | Shown::Unset(default)) = setting.default;
            arg.value_name(name).help(format!("{doc} [env: {env}] [default: {default}]"))
        }
        Flag::Switch => {
            arg.action(ArgAction::SetTrue).help(format!("{doc} (sets {key} to true) [env: {env}]"))
        }
        Flag::Negated => {
            arg.action(ArgAction::SetTrue).help(format!("do not {doc} (sets {key} to false) [env: {env}]"))
        }
    }
}

impl clap::Args for ServeArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let config =
            Arg::new(CONFIG).long(CONFIG).value_name("FILE").value_parser(clap::value_parser!(PathBuf)).help(
                format!(
                    "a TOML config file whose keys are the flags' names with underscores [env: {}]",
                    config::env_var(CONFIG)
                ),
            );
        cmd.arg(config).args(SETTINGS.iter().map(flag))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = RawSettings::default();
        for setting in SETTINGS {
            match setting.flag {
                Flag::Value(_) => {
                    if let Some(value) = matches.get_one::<String>(setting.key) {
                        flags.set_flag(setting.key, value.clone());
                    }
                }
                Flag::Switch if matches.get_flag(setting.key) => flags.set_flag(setting.key, "true"),
                Flag::Negated if matches.get_flag(setting.key) => flags.set_flag(setting.key, "false"),
                Flag::Switch | Flag::Negated => {}
            }
        }
        Ok(ServeArgs { config: matches.get_one::<PathBuf>(CONFIG).cloned(), flags })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
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
        let var = config::env_var(CONFIG);
        env.iter().find(|(k, _)| *k == var).map(|(_, v)| PathBuf::from(v))
    });
    let file = match &config_file {
        Some(path) => RawSettings::from_file(path).map_err(|e| e.to_string())?,
        None => RawSettings::default(),
    };
    let config =
        file.overlay(RawSettings::from_env(env)).overlay(args.flags).resolve().map_err(|e| e.to_string())?;
    let listen = config.listen;
    // Before the server is built, so that what it does at start is logged.
    let _log = logging::init(config.log_format).map_err(|e| format!("cannot start the log writer: {e}"))?;

    // Call lines are handed to the log writer in batches, each time a
    // worker thread parks (see `logging::parked`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(logging::parked)
        .on_thread_stop(logging::stopped)
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    crate::return_freed_memory().map_err(|e| format!("cannot start a thread: {e}"))?;
    runtime.block_on(async {
        let server = Server::new(config).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("listen = \"{listen}\": cannot bind: {e}"))?;
        server.run(listener, shutdown_signal()).await;
        Ok(())
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
