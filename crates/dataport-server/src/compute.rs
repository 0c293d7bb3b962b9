//! The compute pool: CPU-bound work (charts, indicators, Detect) on a fixed
//! set of threads, one per core, at a lower CPU priority (nice 10). Blocking
//! I/O (the stores, fsync) stays on tokio's blocking pool
//! ([`crate::off_reactor`]).
//!
//! Fixed, because tokio's blocking pool adds a thread whenever none is idle
//! at the moment a task comes: under load it grew to tens of threads, each
//! with its allocator's pages, and the server's memory with them (at ten
//! times the chart load one core serves, from 172 to 253 MiB in 30 s and
//! still growing). Lower in priority, because when the work saturates the
//! CPU, the runtime's threads, which accept calls, refuse them past
//! `max_calls` and send the answers, must still get it at once: refused
//! calls took 4.4 ms at p50 and 16-38 ms at p99 with the work at their
//! priority, against about 0.2 and 4 ms with it lowered
//! (tests/reliability/overload).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};

use tonic::Status;

type Job = Box<dyn FnOnce() + Send>;

/// The pool's queue; its threads start with the first job.
fn pool() -> &'static mpsc::Sender<Job> {
    static POOL: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            let spawned =
                std::thread::Builder::new().name(format!("dataport-compute-{i}")).spawn(move || {
                    // Raising one's own nice value is always allowed; should it
                    // fail, the work runs at the usual priority.
                    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
                    loop {
                        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a compute thread");
            }
        }
        jobs
    })
}

/// Runs `work` on the compute pool. A panic in it is INTERNAL.
pub async fn compute<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = answer.send(std::panic::catch_unwind(AssertUnwindSafe(work)));
    });
    pool().send(job).map_err(|_| Status::internal("the compute pool has stopped"))?;
    match answered.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(Status::internal("a computation failed")),
        Err(_) => Err(Status::internal("the compute pool dropped a computation")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_pool_and_a_panic_is_internal() {
        let name = compute(|| std::thread::current().name().map(str::to_owned)).await.unwrap();
        assert!(name.is_some_and(|n| n.starts_with("dataport-compute-")));
        let failed = compute(|| -> u8 { panic!("boom") }).await.unwrap_err();
        assert_eq!(failed.code(), tonic::Code::Internal);
        assert_eq!(compute(|| 6 * 7).await.unwrap(), 42);
    }
}
