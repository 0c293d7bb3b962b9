//! Stored files over the file store: the seed `FileSrv` and
//! `FileTransfer.FileService` (compat.rs), `google.bytestream.ByteStream`
//! (bytestream.rs) and `dataport.files.v1.FilesService` (v1.rs). Every
//! service maps store errors through [`status`] and moves data between the
//! request or response stream and the blocking store through stream.rs's
//! bounded channels (one upload pipeline for every upload RPC), so memory
//! stays bounded whatever the file size.

pub mod bytestream;
pub mod compat;
mod stream;
pub mod v1;
mod wire;

use dataport_store::files::FileError;
use tonic::Status;

use dataport_wire::Lean;

/// `service` in front of its generated server: the methods that carry file
/// data are served off the wire (each service's `OffTheWire`, with wire.rs),
/// every other by `generated`.
fn lean<S, D: Clone>(service: D, generated: impl FnOnce(D) -> S) -> Lean<S, D> {
    Lean::new(generated(service.clone()), service)
}

/// A client's string as an error message quotes it: escaped, and cut short,
/// since a refused value may be megabytes long.
fn shown(value: &str) -> String {
    const SHOWN_CHARS: usize = 100;
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(SHOWN_CHARS).collect();
    if chars.next().is_some() { format!("{head:?}...") } else { format!("{head:?}") }
}

/// Runs a store call on the blocking pool, its error mapped by [`status`].
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, FileError> + Send + 'static,
) -> Result<T, Status> {
    crate::off_reactor(call).await?.map_err(status)
}

/// The one mapping from a store error to the status a client sees.
pub fn status(e: FileError) -> Status {
    match e {
        FileError::BadName(_) => Status::invalid_argument(e.to_string()),
        FileError::NotFound { .. } => Status::not_found(e.to_string()),
        FileError::TooLarge { .. } => Status::resource_exhausted(e.to_string()),
        FileError::DiskFull { ref path } => {
            tracing::warn!(path = %path.display(), "disk full: upload refused");
            Status::resource_exhausted("the server's disk is full; nothing was stored")
        }
        FileError::ChecksumMismatch { .. } => Status::data_loss(e.to_string()),
        // Caused by the client's offsets or concurrent calls, not by the
        // server: named as such rather than logged as failures.
        FileError::BadOffset { .. } => Status::out_of_range(e.to_string()),
        FileError::InUse { .. } => Status::aborted(e.to_string()),
        FileError::UploadFinished { .. } | FileError::Exists { .. } => Status::already_exists(e.to_string()),
        FileError::Abandoned { .. } => Status::failed_precondition(e.to_string()),
        // An object store that does not answer: the call may be retried.
        FileError::Unreachable { .. } => {
            tracing::warn!(error = %e, "file store unreachable");
            Status::unavailable(e.to_string())
        }
        FileError::Io { .. }
        | FileError::Index { .. }
        | FileError::Migration { .. }
        | FileError::Corrupt { .. }
        | FileError::Store { .. }
        | FileError::Url { .. } => {
            tracing::error!(error = %e, "file store failed");
            Status::internal(format!("the file store failed: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataport_core::files::validate_name;
    use tonic::Code;

    #[test]
    fn store_errors_map_to_the_codes_clients_act_on() {
        let code = |e: FileError| status(e).code();
        assert_eq!(code(FileError::BadName(validate_name("").unwrap_err())), Code::InvalidArgument);
        assert_eq!(code(FileError::NotFound { name: "a".into() }), Code::NotFound);
        let too_large = status(FileError::TooLarge { limit: 42 });
        assert_eq!(too_large.code(), Code::ResourceExhausted);
        assert!(too_large.message().contains("42"), "{}", too_large.message());
        assert_eq!(code(FileError::DiskFull { path: "/x".into() }), Code::ResourceExhausted);
        let digest = dataport_core::files::Sha256Digest([0; 32]);
        assert_eq!(code(FileError::ChecksumMismatch { expected: digest, actual: digest }), Code::DataLoss);
        assert_eq!(code(FileError::BadOffset { expected: 1, got: 2 }), Code::OutOfRange);
        assert_eq!(code(FileError::InUse { id: "a".into() }), Code::Aborted);
        let info = dataport_store::files::FileInfo {
            name: "f".into(),
            size: 3,
            sha256: digest,
            created: std::time::UNIX_EPOCH,
            modified: std::time::UNIX_EPOCH,
        };
        let finished = status(FileError::UploadFinished { id: "u".into(), info: Box::new(info) });
        assert_eq!(finished.code(), Code::AlreadyExists);
        assert!(finished.message().contains("\"u\" was already finished"), "{}", finished.message());
        assert_eq!(code(FileError::Abandoned { name: "a".into() }), Code::FailedPrecondition);
        let io = FileError::Io { path: "/x".into(), source: std::io::Error::other("boom") };
        assert_eq!(code(io), Code::Internal);
        let unreachable =
            FileError::Unreachable { url: "s3://b/p".into(), reason: "connection refused".into() };
        assert_eq!(code(unreachable), Code::Unavailable);
        assert_eq!(code(FileError::Store { url: "s3://b/p".into(), reason: "403".into() }), Code::Internal);
    }
}
