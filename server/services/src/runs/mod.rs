//! Runs: work that outlives the process that started it (a chat answer, later an agent's task),
//! generic over its event type. The database is the source of truth: a run's events are
//! numbered rows, written only by the instance holding the run's lease, with its fencing token
//! (`db::queries::runs`).
//!
//! - [`Runs`] is one instance's side: its id, its [`RunsConfig`], the readers it wakes.
//! - [`RunWriter`] writes one run: events are buffered and coalesced ([`RunEvent::merge`]) and
//!   written every [`FlushConfig::interval`] or [`FlushConfig::bytes`], the lease is renewed every
//!   [`LeaseConfig::heartbeat`], and once the lease is lost every call answers
//!   [`RunError::LeaseLost`] and [`RunWriter::lost`] wakes the generator.
//! - [`RunReader`] follows one run from any number on, on any instance: it always reads the rows
//!   after the last number it returned, so it never skips or repeats one. It is woken by writers
//!   in this process, by Postgres notifications for writers elsewhere ([`Runs::listen`]), and
//!   polls every [`RunsConfig::poll_interval`] whatever happens.
//! - [`Runs::recover`] claims the runs of a kind whose owner went away and hands each to a
//!   callback (an answer: mark it interrupted; an agent's task: resume it).
//! - [`Runs::request_stop`] stops a run from any instance: recorded on its row, the holder's
//!   writer is woken (here at once, elsewhere by a Postgres notification or its next
//!   heartbeat) and [`RunWriter::stop_requested`] tells the work to stop.
//! - [`Runs::remove_old_runs`] deletes ended runs past the retention, one instance per round.

mod notifier;
mod reader;
pub mod retention;
#[cfg(test)]
mod tests;
mod writer;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use db::ids::RunId;
use db::queries::runs::NewRun;
use db::tables::runs;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

pub use notifier::{RunNotifier, Subscription};
pub use reader::{RunEventRecord, RunReader};
pub use writer::RunWriter;

/// An event of a run, as its kind defines it.
pub trait RunEvent: Serialize + DeserializeOwned + Send + 'static {
    /// The event's kind, stored beside it (`text`, `usage`, …).
    fn kind(&self) -> &str;

    /// Merges `next` into this event when the two can be one (adjacent text deltas), or gives
    /// `next` back. By default nothing merges.
    fn merge(&mut self, next: Self) -> Result<(), Self> {
        Err(next)
    }

    /// What the event weighs in the writer's buffer (a text's bytes), counted against
    /// [`FlushConfig::bytes`]. By default nothing: only time and count flush it.
    fn buffered_bytes(&self) -> usize {
        0
    }
}

/// How long a lease lasts and how often its holder renews it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// A run whose holder has not renewed its lease for this long may be claimed by another.
    pub lease: Duration,
    /// How often a holder renews; well below `lease`, so a slow renewal or two do not lose it.
    pub heartbeat: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            heartbeat: Duration::from_secs(5),
        }
    }
}

/// When a writer writes its buffered events: whichever comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushConfig {
    /// The longest an event waits in the buffer.
    pub interval: Duration,
    /// Events weighing this much ([`RunEvent::buffered_bytes`]) are written at once.
    pub bytes: usize,
    /// So many events (after merging) are written at once.
    pub events: usize,
}

impl Default for FlushConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(50),
            bytes: 16 * 1024,
            events: 256,
        }
    }
}

/// An instance's settings for runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunsConfig {
    pub lease: LeaseConfig,
    pub flush: FlushConfig,
    /// How often a reader looks at its rows when nothing woke it.
    pub poll_interval: Duration,
    /// At most so many rows per read.
    pub page_size: u64,
}

impl Default for RunsConfig {
    fn default() -> Self {
        Self {
            lease: LeaseConfig::default(),
            flush: FlushConfig::default(),
            poll_interval: Duration::from_millis(250),
            page_size: 500,
        }
    }
}

/// What can go wrong with a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// This instance no longer holds the run (another claimed it, or it ended, or the lease
    /// expired): nothing more of this writer is written, and the work should stop.
    #[error("the run's lease was lost")]
    LeaseLost,
    #[error("the run does not exist")]
    NotFound,
    /// An event could not be written as JSON or read back.
    #[error("a run event could not be encoded or decoded: {0}")]
    Event(#[from] serde_json::Error),
    #[error(transparent)]
    Database(db::Error),
}

impl From<db::Error> for RunError {
    fn from(error: db::Error) -> Self {
        match error {
            db::Error::LeaseLost => RunError::LeaseLost,
            other => RunError::Database(other),
        }
    }
}

impl From<RunError> for crate::Error {
    fn from(error: RunError) -> Self {
        crate::Error::Internal(error.to_string())
    }
}

/// One instance's side of the runs: cheap to clone, shared by its writers and readers.
#[derive(Clone, Debug)]
pub struct Runs {
    inner: Arc<RunsInner>,
}

#[derive(Debug)]
struct RunsInner {
    database: db::Database,
    instance: String,
    config: RunsConfig,
    notifier: Arc<RunNotifier>,
    /// The task relaying Postgres notifications, once [`Runs::listen`] started it.
    listener: Mutex<Option<tokio::task::AbortHandle>>,
    /// Since when this instance's writes of runs fail (none succeeded since), if they do.
    failing_since: Mutex<Option<tokio::time::Instant>>,
    /// The runs this instance's writers hold, each with the flag that stops it when a stop is
    /// asked for elsewhere.
    held: Mutex<HashMap<RunId, Arc<watch::Sender<bool>>>>,
}

impl Drop for RunsInner {
    fn drop(&mut self) {
        let listener = self
            .listener
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(listener) = listener.take() {
            listener.abort();
        }
    }
}

impl Runs {
    /// This instance's runs, under a fresh random instance id.
    pub fn new(database: db::Database, config: RunsConfig) -> Self {
        Self::with_instance(database, uuid_text(), config)
    }

    /// This instance's runs under the id `instance` (unique among live instances).
    pub fn with_instance(
        database: db::Database,
        instance: impl Into<String>,
        config: RunsConfig,
    ) -> Self {
        Self {
            inner: Arc::new(RunsInner {
                database,
                instance: instance.into(),
                config,
                notifier: Arc::default(),
                listener: Mutex::new(None),
                failing_since: Mutex::new(None),
                held: Mutex::default(),
            }),
        }
    }

    /// The id this instance holds leases under.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    pub fn config(&self) -> &RunsConfig {
        &self.inner.config
    }

    pub fn database(&self) -> &db::Database {
        &self.inner.database
    }

    /// Whether this instance cannot hold leases now: its last write of a run (events, a
    /// renewal) failed for another reason than a lost lease, none succeeded since, and that
    /// was less than a lease ago (an instance with nothing to write is not held back by an old
    /// failure).
    pub fn cannot_hold_leases(&self) -> bool {
        self.inner
            .failing_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|since| since.elapsed() < self.inner.config.lease.lease)
    }

    /// Records the outcome of a write of a run by this instance (see
    /// [`Runs::cannot_hold_leases`]).
    pub(crate) fn record_write(&self, succeeded: bool) {
        let mut failing_since = self
            .inner
            .failing_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if succeeded {
            *failing_since = None;
        } else if failing_since.is_none() {
            *failing_since = Some(tokio::time::Instant::now());
        }
    }

    /// The readers of this process, by run.
    pub fn notifier(&self) -> &Arc<RunNotifier> {
        &self.inner.notifier
    }

    /// On Postgres, listens for other instances' writes and wakes this instance's readers of
    /// them (a hint: readers poll anyway). Returns once listening; a no-op on SQLite or when
    /// listening already. The listener holds one connection of the pool until `Runs` is dropped.
    pub async fn listen(&self) -> Result<(), RunError> {
        if self
            .inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
        {
            return Ok(());
        }
        let Some(listener) = self.inner.database.listen_to_runs().await? else {
            return Ok(());
        };
        let task = tokio::spawn(relay_notices(
            self.inner.database.clone(),
            Arc::clone(&self.inner.notifier),
            Arc::downgrade(&self.inner),
            listener,
        ));
        let mut slot = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(previous) = slot.replace(task.abort_handle()) {
            previous.abort();
        }
        Ok(())
    }

    /// Asks whichever instance holds the run to stop it (as its local stop does): the request
    /// is recorded on the run's row, a writer of this instance is told at once, another
    /// instance's by a notification on Postgres or at its next heartbeat on either database.
    /// `false` when the run has ended or does not exist.
    pub async fn request_stop(&self, run_id: RunId) -> Result<bool, RunError> {
        let requested = self.inner.database.request_run_stop(run_id).await?;
        if requested {
            self.stop_held(run_id);
        }
        Ok(requested)
    }

    /// Tells this instance's writer of the run, if any, that a stop was asked for.
    fn stop_held(&self, run_id: RunId) {
        stop_held(&self.inner.held, run_id);
    }

    /// Registers a writer's stop flag (see [`Runs::request_stop`]).
    pub(crate) fn hold(&self, run_id: RunId, stop: Arc<watch::Sender<bool>>) {
        self.inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(run_id, stop);
    }

    /// Forgets a writer's stop flag (the writer is gone), unless another writer of the run
    /// registered since.
    pub(crate) fn let_go(&self, run_id: RunId, stop: &Arc<watch::Sender<bool>>) {
        let mut held = self
            .inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if held
            .get(&run_id)
            .is_some_and(|registered| Arc::ptr_eq(registered, stop))
        {
            held.remove(&run_id);
        }
    }

    /// Creates a run held by this instance and returns its writer.
    pub async fn start<E: RunEvent>(&self, new: NewRun) -> Result<RunWriter<E>, RunError> {
        let run = self
            .inner
            .database
            .create_run(new, &self.inner.instance, self.inner.config.lease.lease)
            .await?;
        Ok(RunWriter::new(self.clone(), run))
    }

    /// Claims the run if nobody holds it or its lease expired (and it has not ended), and
    /// returns its writer; `None` when it was not claimable.
    pub async fn claim<E: RunEvent>(
        &self,
        run_id: RunId,
    ) -> Result<Option<RunWriter<E>>, RunError> {
        let claimed = self
            .inner
            .database
            .claim_run(run_id, &self.inner.instance, self.inner.config.lease.lease)
            .await?;
        Ok(claimed.map(|run| RunWriter::new(self.clone(), run)))
    }

    /// The run as stored.
    pub async fn run(&self, run_id: RunId) -> Result<Option<runs::Model>, RunError> {
        Ok(self.inner.database.run(run_id).await?)
    }

    /// Follows the run's events numbered after `after_seq` (0: from the first).
    pub fn follow<E: RunEvent>(&self, run_id: RunId, after_seq: i64) -> RunReader<E> {
        RunReader::new(self.clone(), run_id, after_seq)
    }

    /// Claims every run of `kind` whose lease expired or that nobody holds, and hands each
    /// one's writer to `handler` (an answer: `writer.finish(RunState::Interrupted)`). A run
    /// another instance claims first is left to it. Returns how many runs the handler took
    /// without error; a handler's failure is logged and the others go on.
    pub async fn recover<E, Handler, HandlerFuture>(
        &self,
        kind: &str,
        mut handler: Handler,
    ) -> Result<usize, RunError>
    where
        E: RunEvent,
        Handler: FnMut(RunWriter<E>) -> HandlerFuture,
        HandlerFuture: Future<Output = Result<(), RunError>>,
    {
        let candidates = self
            .inner
            .database
            .claimable_runs(kind, self.inner.config.page_size)
            .await?;
        let mut recovered = 0;
        for candidate in candidates {
            let Some(writer) = self.claim::<E>(candidate.id).await? else {
                continue;
            };
            match handler(writer).await {
                Ok(()) => recovered += 1,
                Err(error) => {
                    tracing::warn!(run = %candidate.id, kind, %error, "recovering a run failed");
                }
            }
        }
        Ok(recovered)
    }
}

/// A random id for this instance.
fn uuid_text() -> String {
    RunId::new().to_string()
}

/// Tells the writer of the run among `held`, if any, that a stop was asked for.
fn stop_held(held: &Mutex<HashMap<RunId, Arc<watch::Sender<bool>>>>, run_id: RunId) {
    if let Some(stop) = held
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&run_id)
    {
        stop.send_replace(true);
    }
}

/// Relays Postgres notifications until aborted: writes to this process's readers, stops asked
/// for to this instance's writers. A lost connection wakes every reader (notices may have been
/// missed; a missed stop is seen at the holder's next heartbeat); a failed listener is opened
/// again.
async fn relay_notices(
    database: db::Database,
    notifier: Arc<RunNotifier>,
    runs: std::sync::Weak<RunsInner>,
    mut listener: db::RunListener,
) {
    loop {
        match listener.next().await {
            Ok(Some(db::RunSignal::Written(notice))) => notifier.notify(notice.run_id),
            Ok(Some(db::RunSignal::StopRequested(run_id))) => {
                let Some(runs) = runs.upgrade() else { return };
                stop_held(&runs.held, run_id);
            }
            Ok(None) => notifier.notify_all(),
            Err(error) => {
                tracing::warn!(%error, "listening for run notifications failed; retrying");
                notifier.notify_all();
                listener = loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match database.listen_to_runs().await {
                        Ok(Some(listener)) => break listener,
                        Ok(None) => return,
                        Err(error) => {
                            tracing::warn!(%error, "listening for run notifications failed");
                        }
                    }
                };
                notifier.notify_all();
            }
        }
    }
}
