//! `dataport backup DATA_DIR DEST` (while a server runs on DATA_DIR) and
//! `dataport restore BACKUP DATA_DIR` (no server on either): a consistent
//! copy of a data directory, which is itself one (see
//! `dataport_store::backup`).

use std::path::PathBuf;
use std::process::ExitCode;

use dataport_store::backup::{self, Copied};

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The data directory to copy; a server may be running on it.
    data_dir: PathBuf,
    /// Where the copy goes: a new or empty directory.
    dest: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A backup (or any data directory no server is running on).
    backup: PathBuf,
    /// Where it is restored: a new or empty directory, for `serve --data-dir`.
    data_dir: PathBuf,
}

pub fn backup(args: BackupArgs) -> ExitCode {
    report(backup::backup(&args.data_dir, &args.dest), "backed up", &args.dest)
}

pub fn restore(args: RestoreArgs) -> ExitCode {
    report(backup::restore(&args.backup, &args.data_dir), "restored", &args.data_dir)
}

fn report(done: Result<Copied, backup::BackupError>, what: &str, to: &std::path::Path) -> ExitCode {
    match done {
        Ok(copied) => {
            println!(
                "{what} into {}: the bar store and {} files ({} bytes){}",
                to.display(),
                copied.files,
                copied.bytes,
                if copied.snapshots > 1 {
                    format!(", {} index snapshots (files changed meanwhile)", copied.snapshots)
                } else {
                    String::new()
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
