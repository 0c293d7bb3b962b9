//! Logs: the subscriber, the batching sink every line goes through, and the
//! line written for every call ([`crate::stack`] finishes one per call).

mod audit;
mod call;
mod sink;
mod trace;

use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
pub use audit::Audit;
pub(crate) use call::Call;
pub use call::{code_name, parked, stopped};
pub use sink::{Sink, SinkGuard};
pub use trace::{TraceId, TraceParent};

/// Set by [`init`] when call lines are enabled: they then bypass tracing's
/// formatter (see the `call` module).
static CALL_LINES: OnceLock<call::CallLines> = OnceLock::new();

/// Installs the global subscriber, writing to stdout through a [`Sink`];
/// `RUST_LOG` filters (default `info`, h2's own lines from `error`). Keep
/// the guard alive until exit: dropping it flushes what is pending.
pub fn init(format: LogFormat) -> std::io::Result<SinkGuard> {
    let (sink, guard) = Sink::spawn(std::io::stdout())?;
    // h2 warns of protocol oddities a peer can repeat at will (an unasked
    // PING ack, say): one line each would let any client flood the log.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,h2=error"));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(sink.clone()).with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    if tracing::enabled!(target: call::TARGET, tracing::Level::INFO) {
        let _ = CALL_LINES.set(call::CallLines { sink, format });
    }
    Ok(guard)
}
