//! Files the server reads again while it runs (the TLS certificate and key,
//! the token file): when one changes, or on SIGHUP.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How often the files are checked for changes.
const EVERY: Duration = Duration::from_secs(2);

/// Some files and their modification times when last read.
#[derive(Debug)]
pub struct Watched {
    paths: Vec<PathBuf>,
    seen: Vec<Option<SystemTime>>,
}

impl Watched {
    /// Notes the files' modification times now: take it before reading them,
    /// so that a change made while they are read is not missed.
    pub fn new(paths: Vec<PathBuf>) -> Watched {
        let seen = stamps(&paths);
        Watched { paths, seen }
    }

    /// Whether a file changed since last asked (or since [`Self::new`]).
    fn changed(&mut self) -> bool {
        let now = stamps(&self.paths);
        let changed = now != self.seen;
        self.seen = now;
        changed
    }

    /// Calls `reload` whenever a file changes (checked every two seconds)
    /// or the process gets SIGHUP, logging what it answers, until the
    /// runtime ends. A failed reload is not retried until the files change
    /// again: what it read stays refused, and what was loaded before stays.
    pub fn spawn(mut self, what: &'static str, reload: impl Fn() -> Result<(), String> + Send + 'static) {
        tokio::spawn(async move {
            let mut hangups = hangups();
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let why = tokio::select! {
                    _ = tick.tick() => match self.changed() {
                        true => "the files changed",
                        false => continue,
                    },
                    Some(()) = hangups.recv() => {
                        self.changed();
                        "SIGHUP"
                    }
                };
                match reload() {
                    Ok(()) => tracing::info!(what, why, "reloaded"),
                    Err(error) => {
                        tracing::error!(what, why, %error, "the new files do not load; still using the ones loaded before")
                    }
                }
            }
        });
    }
}

fn stamps(paths: &[PathBuf]) -> Vec<Option<SystemTime>> {
    paths.iter().map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).collect()
}

/// SIGHUPs as they arrive (none where the signal cannot be watched).
fn hangups() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut hup) = signal(SignalKind::hangup()) {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    if tx.send(()).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_seen_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "one").unwrap();
        let mut watched = Watched::new(vec![path.clone(), dir.path().join("missing")]);
        assert!(!watched.changed());
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        assert!(watched.changed());
        assert!(!watched.changed(), "the same change is not seen twice");
        std::fs::remove_file(&path).unwrap();
        assert!(watched.changed(), "a file that went away is a change too");
    }
}
