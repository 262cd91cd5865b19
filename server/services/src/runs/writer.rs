//! Writing one run under its lease: buffered, coalesced events written by a task of the writer's
//! own, which also renews the lease.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use db::ids::RunId;
use db::queries::runs::{NewRunEvent, RunLease};
use db::tables::runs::{self, RunState};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::{RunError, RunEvent, Runs};

/// The writer of one run, holding its lease with a fencing token.
///
/// [`RunWriter::push`] never waits for the database: events are buffered, adjacent ones merged
/// ([`RunEvent::merge`]), and written by the writer's task when the oldest has waited
/// [`FlushConfig::interval`](super::FlushConfig::interval) or the buffer is full. The same task
/// renews the lease. Once the lease is lost (another instance claimed the run, or it could not
/// be renewed in time), nothing more is written: every call answers [`RunError::LeaseLost`] and
/// [`RunWriter::lost`] returns. End a run with [`RunWriter::finish`] or hand it back with
/// [`RunWriter::release`]; a writer dropped without either stops writing and renewing, and its
/// buffered events are lost: the run is recovered once its lease expires.
pub struct RunWriter<E: RunEvent> {
    core: Arc<WriterCore<E>>,
    task: tokio::task::JoinHandle<()>,
}

impl<E: RunEvent> std::fmt::Debug for RunWriter<E> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RunWriter")
            .field("run", &self.core.run.id)
            .field("token", &self.core.run.fencing_token)
            .finish_non_exhaustive()
    }
}

/// What the writer and its task share.
struct WriterCore<E> {
    runs: Runs,
    /// The run as claimed (its token is the one every write carries).
    run: runs::Model,
    pending: Mutex<Pending<E>>,
    /// Wakes the task: a first event in the buffer, or a full buffer.
    wake: Notify,
    /// Held while a batch is being written, so batches are written one at a time, in order.
    flushing: tokio::sync::Mutex<()>,
    /// `true` once the lease is lost.
    lost: watch::Sender<bool>,
    /// `true` once a stop was asked for on any instance (seen at a heartbeat, or woken by a
    /// notification through [`Runs`]).
    stop: Arc<watch::Sender<bool>>,
    /// Until when the lease is surely held (the start of the last renewal that succeeded plus
    /// the lease): past it, another instance may hold the run.
    held_until: Mutex<Instant>,
}

/// Events waiting to be written.
struct Pending<E> {
    events: Vec<E>,
    bytes: usize,
    /// When the oldest waiting event came.
    since: Option<Instant>,
}

impl<E> Default for Pending<E> {
    fn default() -> Self {
        Self {
            events: Vec::new(),
            bytes: 0,
            since: None,
        }
    }
}

/// Appends `event` to `events`, merged into the last one when it takes it.
fn push_merged<E: RunEvent>(events: &mut Vec<E>, event: E) {
    let unmerged = match events.last_mut() {
        Some(last) => last.merge(event),
        None => Err(event),
    };
    if let Err(event) = unmerged {
        events.push(event);
    }
}

fn encode<E: RunEvent>(events: &[E]) -> Result<Vec<NewRunEvent>, RunError> {
    events
        .iter()
        .map(|event| {
            Ok(NewRunEvent {
                kind: event.kind().to_owned(),
                payload: serde_json::to_string(event)?,
            })
        })
        .collect()
}

impl<E: RunEvent> WriterCore<E> {
    fn pending(&self) -> MutexGuard<'_, Pending<E>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    fn mark_lost(&self) {
        self.lost.send_replace(true);
    }

    /// When the buffer should be written, if it holds anything.
    fn flush_deadline(&self) -> Option<Instant> {
        let interval = self.runs.config().flush.interval;
        self.pending().since.map(|since| since + interval)
    }

    fn is_full(&self) -> bool {
        let flush = self.runs.config().flush;
        let pending = self.pending();
        pending.bytes >= flush.bytes || pending.events.len() >= flush.events
    }

    fn take_pending(&self) -> Vec<E> {
        std::mem::take(&mut *self.pending()).events
    }

    /// Puts a batch that could not be written back before what came since.
    fn put_back(&self, mut batch: Vec<E>) {
        let mut pending = self.pending();
        for event in pending.events.drain(..) {
            push_merged(&mut batch, event);
        }
        pending.bytes = batch.iter().map(RunEvent::buffered_bytes).sum();
        pending.events = batch;
        pending.since.get_or_insert_with(Instant::now);
    }

    /// The failure of a write: a lost lease is final; another error keeps the lease unless it
    /// can no longer be sure to hold it.
    fn failed(&self, error: db::Error) -> RunError {
        let error = RunError::from(error);
        if !matches!(error, RunError::LeaseLost) {
            self.runs.record_write(false);
        }
        let expired = Instant::now()
            >= *self
                .held_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
        if matches!(error, RunError::LeaseLost) || expired {
            self.mark_lost();
            return RunError::LeaseLost;
        }
        error
    }

    /// Writes the buffered events (one batch at a time, in order). A batch that failed for
    /// another reason than a lost lease is kept for the next attempt.
    async fn flush(&self) -> Result<(), RunError> {
        let _flushing = self.flushing.lock().await;
        if self.is_lost() {
            return Err(RunError::LeaseLost);
        }
        let batch = self.take_pending();
        if batch.is_empty() {
            return Ok(());
        }
        let rows = encode(&batch)?;
        let written = self
            .runs
            .database()
            .append_run_events(
                self.run.id,
                self.runs.instance(),
                self.run.fencing_token,
                &rows,
            )
            .await;
        match written {
            Ok(_) => {
                self.runs.record_write(true);
                self.runs.notifier().notify(self.run.id);
                Ok(())
            }
            Err(error) => {
                let error = self.failed(error);
                if !matches!(error, RunError::LeaseLost) {
                    self.put_back(batch);
                }
                Err(error)
            }
        }
    }

    /// Renews the lease.
    async fn renew(&self) -> Result<(), RunError> {
        let started = Instant::now();
        let lease = self.runs.config().lease.lease;
        let renewed = self
            .runs
            .database()
            .heartbeat_run(
                self.run.id,
                self.runs.instance(),
                self.run.fencing_token,
                lease,
            )
            .await;
        match renewed {
            Ok(heartbeat) => {
                self.runs.record_write(true);
                if heartbeat.stop_requested {
                    self.stop.send_replace(true);
                }
                *self
                    .held_until
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = started + lease;
                Ok(())
            }
            Err(error) => Err(self.failed(error)),
        }
    }
}

/// The writer's task: writes the buffer when due and renews the lease, until the lease is lost
/// or the writer ends.
async fn maintain<E: RunEvent>(core: Arc<WriterCore<E>>) {
    let mut heartbeat = tokio::time::interval(core.runs.config().lease.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once, and the lease was just taken.
    heartbeat.tick().await;
    while !core.is_lost() {
        let deadline = core.flush_deadline();
        let flushed = tokio::select! {
            _ = heartbeat.tick() => core.renew().await,
            () = core.wake.notified() => {
                if core.is_full() { core.flush().await } else { Ok(()) }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)),
                if deadline.is_some() => core.flush().await,
        };
        if let Err(error) = flushed
            && !matches!(error, RunError::LeaseLost)
        {
            tracing::warn!(run = %core.run.id, %error, "writing a run failed; retrying");
        }
    }
}

impl<E: RunEvent> RunWriter<E> {
    /// The writer of `run`, just created or claimed by this instance.
    pub(super) fn new(runs: Runs, run: runs::Model) -> Self {
        let lease = runs.config().lease.lease;
        let stop = Arc::new(watch::channel(run.stop_requested_at.is_some()).0);
        runs.hold(run.id, Arc::clone(&stop));
        let core = Arc::new(WriterCore {
            runs,
            run,
            pending: Mutex::default(),
            wake: Notify::new(),
            flushing: tokio::sync::Mutex::new(()),
            lost: watch::channel(false).0,
            stop,
            held_until: Mutex::new(Instant::now() + lease),
        });
        let task = tokio::spawn(maintain(Arc::clone(&core)));
        Self { core, task }
    }

    pub fn run_id(&self) -> RunId {
        self.core.run.id
    }

    /// The fencing token every write of this writer carries.
    pub fn token(&self) -> i64 {
        self.core.run.fencing_token
    }

    /// The lease this writer holds, for writes of the run's work fenced by it (an answer's
    /// message).
    pub fn lease(&self) -> RunLease {
        RunLease {
            run_id: self.core.run.id,
            instance: self.core.runs.instance().to_owned(),
            token: self.core.run.fencing_token,
        }
    }

    /// The run as it was when this writer got it (the number of its events then, …).
    pub fn run(&self) -> &runs::Model {
        &self.core.run
    }

    /// Whether the lease is lost (nothing more will be written).
    pub fn is_lost(&self) -> bool {
        self.core.is_lost()
    }

    /// A receiver that turns `true` once the lease is lost, for a generator that cannot hold
    /// the writer while it waits (it errs once the writer is gone).
    pub fn subscribe_lost(&self) -> watch::Receiver<bool> {
        self.core.lost.subscribe()
    }

    /// Returns once the lease is lost: a generator selects on it to stop.
    pub async fn lost(&self) {
        let mut lost = self.core.lost.subscribe();
        if lost.wait_for(|lost| *lost).await.is_err() {
            // The sender lives in the core, which this writer holds: never here.
            std::future::pending::<()>().await;
        }
    }

    /// Whether a stop of the run was asked for (on this instance through
    /// [`Runs::request_stop`], or on another).
    pub fn is_stop_requested(&self) -> bool {
        *self.core.stop.borrow()
    }

    /// A receiver that turns `true` once a stop of the run is asked for anywhere, for a
    /// generator that cannot hold the writer while it waits.
    pub fn subscribe_stop(&self) -> watch::Receiver<bool> {
        self.core.stop.subscribe()
    }

    /// Returns once a stop of the run was asked for anywhere: the work selects on it and
    /// stops as a local stop would.
    pub async fn stop_requested(&self) {
        let mut stop = self.core.stop.subscribe();
        if stop.wait_for(|stop| *stop).await.is_err() {
            // The sender lives in the core, which this writer holds: never here.
            std::future::pending::<()>().await;
        }
    }

    /// Buffers an event (merged into the previous one when it takes it). Never waits for the
    /// database; [`RunError::LeaseLost`] once the lease is lost.
    pub fn push(&self, event: E) -> Result<(), RunError> {
        if self.core.is_lost() {
            return Err(RunError::LeaseLost);
        }
        let flush = self.core.runs.config().flush;
        let mut pending = self.core.pending();
        let first = pending.events.is_empty();
        pending.bytes += event.buffered_bytes();
        push_merged(&mut pending.events, event);
        if first {
            pending.since = Some(Instant::now());
        }
        let full = pending.bytes >= flush.bytes || pending.events.len() >= flush.events;
        drop(pending);
        if first || full {
            self.core.wake.notify_one();
        }
        Ok(())
    }

    /// Writes the buffered events now.
    pub async fn flush(&self) -> Result<(), RunError> {
        self.core.flush().await
    }

    /// Writes the buffered events and ends the run in `state` (`Finished`, `Interrupted` or
    /// `Failed`) in one transaction, giving up the lease.
    pub async fn finish(self, state: RunState) -> Result<(), RunError> {
        self.end(Some(state)).await
    }

    /// Writes the buffered events and hands the lease back (graceful shutdown): another
    /// instance may claim the run at once.
    pub async fn release(self) -> Result<(), RunError> {
        self.end(None).await
    }

    async fn end(self, state: Option<RunState>) -> Result<(), RunError> {
        let core = Arc::clone(&self.core);
        // No batch is being written once this is held, so stopping the task loses nothing.
        let _flushing = core.flushing.lock().await;
        self.task.abort();
        if core.is_lost() {
            return Err(RunError::LeaseLost);
        }
        let events = encode(&core.take_pending())?;
        let database = core.runs.database();
        let (instance, token) = (core.runs.instance(), core.run.fencing_token);
        let ended = match state {
            Some(state) => {
                database
                    .finish_run(core.run.id, instance, token, state, &events)
                    .await
            }
            None => {
                database
                    .release_run(core.run.id, instance, token, &events)
                    .await
            }
        };
        match ended {
            Ok(_) => {
                core.runs.notifier().notify(core.run.id);
                Ok(())
            }
            Err(error) => {
                let error = RunError::from(error);
                if matches!(error, RunError::LeaseLost) {
                    core.mark_lost();
                }
                Err(error)
            }
        }
    }
}

impl<E: RunEvent> Drop for RunWriter<E> {
    fn drop(&mut self) {
        self.task.abort();
        self.core.runs.let_go(self.core.run.id, &self.core.stop);
    }
}
