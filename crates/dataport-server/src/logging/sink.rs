//! A batching writer for log lines.
//!
//! Writers append whole lines to a shared buffer under a short lock; one
//! thread moves the buffer to the real output when it passes [`FLUSH_AT`]
//! or every [`FLUSH_EVERY`], whichever comes first. A busy server therefore
//! makes one `write(2)` per many lines and wakes the flusher once per batch,
//! not per line. The buffer is bounded: past [`MAX_PENDING`] writers wait for
//! the flusher, so a stalled stdout slows the server rather than losing lines
//! or growing memory.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// A batch this large is flushed at once.
pub const FLUSH_AT: usize = 64 * 1024;
/// A smaller batch waits at most this long.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Writers wait while this much is pending.
pub const MAX_PENDING: usize = 8 * 1024 * 1024;

#[derive(Debug, Default)]
struct State {
    pending: Vec<u8>,
    /// Set once a flush was requested for the current batch, so only the
    /// first writer past [`FLUSH_AT`] pays for a wake-up.
    requested: bool,
    closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the flusher.
    work: Condvar,
    /// Wakes writers waiting for room.
    room: Condvar,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic while appending bytes leaves a valid (if partial) buffer.
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writing end; cheap to clone.
#[derive(Clone, Debug)]
pub struct Sink {
    shared: Arc<Shared>,
}

/// Flushes everything and stops the flusher when dropped.
#[derive(Debug)]
pub struct SinkGuard {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

impl Sink {
    /// A sink writing to `out` from a thread of its own.
    pub fn spawn<W: Write + Send + 'static>(out: W) -> std::io::Result<(Sink, SinkGuard)> {
        let shared = Arc::new(Shared::default());
        let flusher = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new().name("dataport-log".into()).spawn(move || flush_loop(&shared, out))?
        };
        Ok((Sink { shared: Arc::clone(&shared) }, SinkGuard { shared, flusher: Some(flusher) }))
    }

    /// Lets `fill` append whole lines (each ending in a newline) to the
    /// pending buffer, under its lock; waits first while the buffer is full.
    pub fn append(&self, fill: impl FnOnce(&mut Vec<u8>)) {
        let mut state = lock(&self.shared);
        while state.pending.len() >= MAX_PENDING && !state.closed {
            state = self.shared.room.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        fill(&mut state.pending);
        if state.pending.len() >= FLUSH_AT && !state.requested {
            state.requested = true;
            self.shared.work.notify_one();
        }
    }
}

fn flush_loop<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::with_capacity(FLUSH_AT * 2);
    loop {
        let closed = {
            let mut state = lock(shared);
            if !state.requested && !state.closed {
                state =
                    shared.work.wait_timeout(state, FLUSH_EVERY).unwrap_or_else(PoisonError::into_inner).0;
            }
            std::mem::swap(&mut state.pending, &mut batch);
            state.requested = false;
            state.closed
        };
        shared.room.notify_all();
        if !batch.is_empty() {
            // Logging has nowhere to report its own failure; a full disk
            // loses log lines, never calls.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
        }
        if closed && lock(shared).pending.is_empty() {
            return;
        }
    }
}

impl Drop for SinkGuard {
    fn drop(&mut self) {
        lock(&self.shared).closed = true;
        self.shared.work.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.append(|pending| pending.extend_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
    type Writer = Sink;

    fn make_writer(&'a self) -> Sink {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that records what it was given and how many writes.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut r = self.0.lock().unwrap();
            r.0.extend_from_slice(buf);
            r.1 += 1;
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_in_order_and_in_few_writes() {
        let out = Recorder::default();
        let (sink, guard) = Sink::spawn(out.clone()).unwrap();
        let lines = 100_000;
        for i in 0..lines {
            sink.append(|b| writeln!(b, "line {i}").unwrap());
        }
        drop(guard);
        let (bytes, writes) = out.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.lines().count(), lines);
        assert!(text.lines().enumerate().all(|(i, l)| l == format!("line {i}")));
        assert!(writes < lines / 100, "{writes} writes for {lines} lines");
    }

    #[test]
    fn a_quiet_sink_still_flushes_within_the_interval() {
        let out = Recorder::default();
        let (sink, _guard) = Sink::spawn(out.clone()).unwrap();
        sink.append(|b| b.extend_from_slice(b"one\n"));
        let deadline = std::time::Instant::now() + FLUSH_EVERY * 20;
        while out.0.lock().unwrap().0.is_empty() {
            assert!(std::time::Instant::now() < deadline, "not flushed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(out.0.lock().unwrap().0, b"one\n");
    }

    #[test]
    fn writers_from_many_threads_never_interleave_within_a_line() {
        let out = Recorder::default();
        let (sink, guard) = Sink::spawn(out.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        // One write per line, as tracing-subscriber makes.
                        let line = format!("{}\n", format!("t{t}-{i}|").repeat(5));
                        sink.write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().0.clone()).unwrap();
        assert_eq!(text.lines().count(), 40_000);
        let whole = |line: &str| line.split('|').filter(|p| !p.is_empty()).all(|p| line.starts_with(p));
        assert!(text.lines().all(|l| l.len() > 4 && whole(l)), "a line was split");
    }
}
