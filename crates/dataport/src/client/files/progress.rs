//! The progress of transfers: bars for a person watching, lines for scripts.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Progress bars on stderr when it is a terminal; summary lines on stdout
/// always, so that scripts can read them.
#[derive(Clone)]
pub(super) struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    pub(super) fn new() -> Self {
        Progress { bars: std::io::stderr().is_terminal().then(MultiProgress::new) }
    }

    /// A bar counting `len` bytes, labelled `label`; hidden when stderr is
    /// not a terminal.
    pub(super) fn bar(&self, len: u64, label: &str) -> ProgressBar {
        let Some(bars) = &self.bars else { return ProgressBar::hidden() };
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bars.add(ProgressBar::new(len).with_style(style).with_message(label.to_owned()))
    }

    /// A result line on stdout, printed clear of the bars.
    pub(super) fn line(&self, text: &str) {
        match &self.bars {
            Some(bars) => bars.suspend(|| println!("{text}")),
            None => println!("{text}"),
        }
    }

    /// A remark on stderr, for a person watching only.
    pub(super) fn note(&self, text: &str) {
        if let Some(bars) = &self.bars {
            let _ = bars.println(text);
        }
    }
}
