//! `dataport fsck DATA_DIR`: checks a data directory while no server holds
//! it: every stored file against the file index (its object, size and
//! sha256), what no index entry names (left by a crash), and the bar store's
//! SQLite file. `--repair` removes only what no index entry names; a stored
//! file is never removed, whatever is wrong with it.

use std::path::PathBuf;
use std::process::ExitCode;

use dataport_store::DataDir;
use dataport_store::bars::SqliteBarStore;
use dataport_store::files;

#[derive(Debug, clap::Args)]
pub struct FsckArgs {
    /// The data directory (the server's data_dir); no server may be running on it.
    data_dir: PathBuf,
    /// Remove what no index entry names (uploads cut off by a crash, objects of commits cut short).
    #[arg(long)]
    repair: bool,
}

pub fn run(args: FsckArgs) -> ExitCode {
    match check(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Prints what it finds; answers whether all is well.
fn check(args: &FsckArgs) -> anyhow::Result<bool> {
    if !args.data_dir.is_dir() {
        anyhow::bail!("{} is not a directory", args.data_dir.display());
    }
    // Held to the end: no server may write meanwhile.
    let dir = DataDir::open(&args.data_dir)?;
    let found = files::check(dir.path(), args.repair)?;
    for damage in &found.damaged {
        println!("damaged: {damage}");
    }
    let verb = if args.repair { "removed" } else { "not in the index" };
    for path in &found.leftovers {
        println!("{verb}: {}", path.display());
    }
    println!(
        "files: {} stored ({} bytes) checked, {} damaged, {} left over{}, {} resumable uploads in progress",
        found.files,
        found.bytes,
        found.damaged.len(),
        found.leftovers.len(),
        if args.repair && !found.leftovers.is_empty() { " (removed)" } else { "" },
        found.resumable
    );
    // A data directory whose server kept its bars in PostgreSQL (bars_url)
    // has no bar database; fsck makes none.
    let bars = if dir.path().join(SqliteBarStore::FILE).exists() {
        let bars = SqliteBarStore::open(dir.path())?.integrity_check()?;
        for problem in &bars {
            println!("bars: {problem}");
        }
        println!(
            "bars: {}",
            if bars.is_empty() { "the database is sound" } else { "the database is damaged" }
        );
        bars
    } else {
        println!("bars: none in this directory (kept in PostgreSQL, or never imported)");
        Vec::new()
    };
    let clean = found.clean(args.repair) && bars.is_empty();
    if !clean && !args.repair && found.damaged.is_empty() && bars.is_empty() {
        println!("--repair removes what is not in the index");
    }
    Ok(clean)
}
