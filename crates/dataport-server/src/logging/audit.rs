//! Audit lines: one for every call of a method that changes stored state
//! (as [`crate::auth::need`] classifies it), with the caller, the method,
//! the object it changed (a file name, a symbol, an entity) and the outcome,
//! written beside the call's line when the call ends. The handler names the
//! object through the [`Audit`] the call layer puts in the request; a call
//! refused before its handler read the request names none (`-`).

use std::sync::{Arc, OnceLock};

/// Where a write's handler names its object; inert for other calls.
#[derive(Clone, Debug, Default)]
pub struct Audit(Option<Arc<OnceLock<Box<str>>>>);

impl Audit {
    /// A slot for a write call.
    pub(crate) fn write() -> Audit {
        Audit(Some(Arc::default()))
    }

    /// The audit of the request with these extensions (inert if it has none).
    pub fn of(extensions: &http::Extensions) -> Audit {
        extensions.get::<Audit>().cloned().unwrap_or_default()
    }

    /// Names the object the call changes; the first name given stays.
    pub fn object(&self, name: &str) {
        if let Some(slot) = &self.0 {
            let _ = slot.set(name.into());
        }
    }

    pub(crate) fn is_write(&self) -> bool {
        self.0.is_some()
    }

    /// Writes the audit line of a finished write call.
    pub(crate) fn log(&self, caller: &str, method: &str, code: &str, message: Option<&str>) {
        let Some(slot) = &self.0 else { return };
        let object = slot.get().map_or("-", |name| name);
        tracing::info!(target: "dataport::audit", caller, method, object, outcome = code, message);
    }
}
