//! The progress of transfers: bars for a person watching, lines for scripts.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{
    BinaryBytes, HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle,
};

/// How long a bar runs before it shows a rate and an ETA. Its first draw
/// comes with its first bytes, often a few (the tail of an HTTP/2 frame)
/// counted after the file was opened: a rate from that alone read
/// "7 B ... 3.22 KiB/s ETA 25h" for a 286 MiB download that took half a
/// second. By this time the estimate rests on the transfer itself.
const SETTLE: Duration = Duration::from_millis(500);

/// Progress bars on stderr when it is a terminal; summary lines on stdout
/// always, so that scripts can read them.
#[derive(Clone)]
pub(super) struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    pub(super) fn new() -> Self {
        Progress::drawing_to(std::io::stderr().is_terminal().then(ProgressDrawTarget::stderr))
    }

    /// Bars drawn to `target`; none without one.
    fn drawing_to(target: Option<ProgressDrawTarget>) -> Self {
        Progress { bars: target.map(MultiProgress::with_draw_target) }
    }

    /// A bar counting `len` bytes, labelled `label`; hidden when stderr is
    /// not a terminal. Every draw shows `len` as the total, and the rate and
    /// ETA once they mean something ([`SETTLE`]).
    pub(super) fn bar(&self, len: u64, label: &str) -> ProgressBar {
        let Some(bars) = &self.bars else { return ProgressBar::hidden() };
        let style =
            ProgressStyle::with_template("{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes}{speed}")
                .map(|s| s.progress_chars("=> ").with_key("speed", speed))
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

/// " 120.50 MiB/s ETA 2s", as indicatif writes `{binary_bytes_per_sec}` and
/// `{eta}`, once the bar has run [`SETTLE`] and counted something; nothing
/// before.
fn speed(state: &ProgressState, out: &mut dyn std::fmt::Write) {
    if state.elapsed() < SETTLE || state.pos() == 0 {
        return;
    }
    let rate = state.per_sec();
    if rate > 0.0 {
        let _ = write!(out, " {}/s ETA {:#}", BinaryBytes(rate as u64), HumanDuration(state.eta()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;

    /// A terminal that keeps what is drawn on it.
    #[derive(Clone, Debug, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl Screen {
        /// Everything written so far that mentions `label`, in order.
        fn lines_with(&self, label: &str) -> Vec<String> {
            let written = self.0.lock().expect("screen lock");
            written.iter().filter(|s| s.contains(label)).cloned().collect()
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            if !s.is_empty() {
                self.0.lock().expect("screen lock").push(s.to_owned());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_bar_opens_with_the_real_size_and_shows_a_rate_only_once_it_has_one() {
        let screen = Screen::default();
        let progress = Progress::drawing_to(Some(ProgressDrawTarget::term_like(Box::new(screen.clone()))));
        // As `download` sees it: the File message names the size, the file
        // is opened (some milliseconds), then the first frame's last 7 bytes.
        let bar = progress.bar(300_000_000, "big.bin");
        std::thread::sleep(Duration::from_millis(20));
        bar.inc(7);
        let first = screen.lines_with("big.bin");
        assert_eq!(first.len(), 1, "{first:?}");
        assert!(first[0].ends_with("] 7 B/286.10 MiB"), "{first:?}");

        std::thread::sleep(SETTLE);
        bar.inc(100 * 1024 * 1024);
        let lines = screen.lines_with("big.bin");
        let last = lines.last().expect("a second draw");
        assert!(last.contains("] 100.00 MiB/286.10 MiB ") && last.contains("/s ETA "), "{lines:?}");
    }

    #[test]
    fn bars_are_hidden_without_a_terminal() {
        let bar = Progress::drawing_to(None).bar(10, "x");
        assert!(bar.is_hidden());
    }
}
