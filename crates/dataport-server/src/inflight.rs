//! `max_inflight_bytes`: the request data the server holds at once, across
//! calls: Detect batches read and being judged, imports being gathered,
//! upload pieces waiting for the disk. A call takes room as its data
//! arrives and gives it back when the data is gone (judged, imported,
//! written). One that finds no room waits up to [`WAIT`] for some (the
//! client's data meanwhile stays in its HTTP/2 window), then is refused
//! RESOURCE_EXHAUSTED naming the setting; the calls that hold room go on and
//! answer as they would have.
//!
//! The other RPCs' requests are single messages within `max_message_size`
//! (4 MiB), and `max_calls` bounds how many are under way; they are not
//! counted, so the common call pays nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

/// How long a call waits for room before it is refused.
pub const WAIT: Duration = Duration::from_secs(1);

/// Room is taken in steps of at least this much, so that a large request
/// read in small frames does not take it frame by frame.
const STEP: usize = 1 << 20;

/// The room for request data, shared by every call of a server.
#[derive(Clone, Debug)]
pub struct Inflight {
    room: Arc<Semaphore>,
    max: usize,
}

/// Room a call holds; given back when dropped.
#[derive(Debug, Default)]
pub struct Held {
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

impl Inflight {
    pub fn new(max: usize) -> Inflight {
        let max = max.min(Semaphore::MAX_PERMITS);
        Inflight { room: Arc::new(Semaphore::new(max)), max }
    }

    /// Bytes held now, across calls.
    pub fn held(&self) -> usize {
        self.max - self.room.available_permits()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Makes `held` hold at least `total` bytes, taking more room when it
    /// holds less (at least [`STEP`] more, never past the maximum).
    pub async fn hold(&self, held: &mut Held, total: usize) -> Result<(), Status> {
        if total <= held.bytes {
            return Ok(());
        }
        if total > self.max {
            return Err(self.refused(total, "it alone is larger"));
        }
        let more = (total - held.bytes).max(STEP).min(self.max - held.bytes);
        let permit = self.take(more, total).await?;
        match &mut held.permit {
            Some(mine) => mine.merge(permit),
            None => held.permit = Some(permit),
        }
        held.bytes += more;
        Ok(())
    }

    /// Room for one piece of `bytes`, held by the piece.
    pub async fn piece(&self, bytes: usize) -> Result<Held, Status> {
        if bytes == 0 {
            return Ok(Held::default());
        }
        if bytes > self.max {
            return Err(self.refused(bytes, "it alone is larger"));
        }
        Ok(Held { permit: Some(self.take(bytes, bytes).await?), bytes })
    }

    /// `bytes` of room (at most the maximum), for a call that asked for
    /// `asked`: at once, or within [`WAIT`], or refused.
    async fn take(&self, bytes: usize, asked: usize) -> Result<OwnedSemaphorePermit, Status> {
        let too_large = || self.refused(asked, "it alone is larger");
        let permits = u32::try_from(bytes).map_err(|_| too_large())?;
        if let Ok(permit) = Arc::clone(&self.room).try_acquire_many_owned(permits) {
            return Ok(permit);
        }
        match tokio::time::timeout(WAIT, Arc::clone(&self.room).acquire_many_owned(permits)).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed: this is the timeout.
            _ => Err(self.refused(asked, "the server holds the rest for other calls")),
        }
    }

    fn refused(&self, bytes: usize, why: &str) -> Status {
        Status::resource_exhausted(format!(
            "no room for {bytes} bytes of request data within max_inflight_bytes ({}): {why}; try again shortly",
            self.max
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn room_is_taken_in_steps_and_given_back_when_dropped() {
        let inflight = Inflight::new(4 * STEP);
        let mut held = Held::default();
        inflight.hold(&mut held, 10).await.unwrap();
        assert_eq!(inflight.held(), STEP);
        inflight.hold(&mut held, STEP + 1).await.unwrap();
        assert_eq!(inflight.held(), 2 * STEP);
        inflight.hold(&mut held, STEP).await.unwrap();
        assert_eq!(inflight.held(), 2 * STEP, "already held");
        drop(held);
        assert_eq!(inflight.held(), 0);
    }

    #[tokio::test]
    async fn a_call_without_room_waits_then_is_refused_naming_the_setting() {
        let inflight = Inflight::new(2 * STEP);
        let first = inflight.piece(2 * STEP).await.unwrap();
        let start = std::time::Instant::now();
        let refused = inflight.piece(STEP).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("max_inflight_bytes (2097152)"), "{refused:?}");
        assert!(start.elapsed() >= WAIT, "{:?}", start.elapsed());
        // Room given back is taken by a waiting call.
        let waiting = tokio::spawn({
            let inflight = inflight.clone();
            async move { inflight.piece(STEP).await.map(|held| held.bytes) }
        });
        tokio::task::yield_now().await;
        drop(first);
        assert_eq!(waiting.await.unwrap().unwrap(), STEP);
        let mut huge = Held::default();
        let alone = inflight.hold(&mut huge, 3 * STEP).await.unwrap_err();
        assert!(alone.message().contains("it alone is larger"), "{alone:?}");
    }
}
