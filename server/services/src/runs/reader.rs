//! Following one run from any number on, on any instance.

use std::collections::VecDeque;
use std::marker::PhantomData;

use db::ids::RunId;
use db::tables::run_events;

use super::{RunError, RunEvent, Runs, Subscription};

/// One event of a run, with its number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunEventRecord<E> {
    /// 1, 2, 3, … without gaps.
    pub seq: i64,
    pub kind: String,
    pub event: E,
}

/// A reader of one run's events after a number. It reads the rows after the last number it
/// returned, so it never skips or repeats one whoever writes and wherever; wake-ups (local
/// writers, Postgres notifications) only make it look sooner than its polling would.
pub struct RunReader<E> {
    runs: Runs,
    run_id: RunId,
    /// The number of the last event returned (or the starting point).
    after_seq: i64,
    buffer: VecDeque<run_events::Model>,
    subscription: Subscription,
    ended: bool,
    event: PhantomData<fn() -> E>,
}

impl<E> std::fmt::Debug for RunReader<E> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RunReader")
            .field("run", &self.run_id)
            .field("after_seq", &self.after_seq)
            .finish_non_exhaustive()
    }
}

impl<E: RunEvent> RunReader<E> {
    pub(super) fn new(runs: Runs, run_id: RunId, after_seq: i64) -> Self {
        let subscription = runs.notifier().subscribe(run_id);
        Self {
            runs,
            run_id,
            after_seq: after_seq.max(0),
            buffer: VecDeque::new(),
            subscription,
            ended: false,
            event: PhantomData,
        }
    }

    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// The number of the last event returned (or the starting point).
    pub fn last_seq(&self) -> i64 {
        self.after_seq
    }

    /// The next event, waiting for it; `None` once the run has ended and every event was
    /// returned. [`RunError::NotFound`] when the run does not exist.
    pub async fn next(&mut self) -> Result<Option<RunEventRecord<E>>, RunError> {
        loop {
            if let Some(row) = self.buffer.pop_front() {
                self.after_seq = row.seq;
                let event = serde_json::from_str(&row.payload)?;
                return Ok(Some(RunEventRecord {
                    seq: row.seq,
                    kind: row.kind,
                    event,
                }));
            }
            if self.ended {
                return Ok(None);
            }
            // Writes from here on wake the wait below, even those the reads would miss.
            self.subscription.mark_seen();
            let config = *self.runs.config();
            let rows = self
                .runs
                .database()
                .run_events_after(self.run_id, self.after_seq, config.page_size)
                .await?;
            if !rows.is_empty() {
                self.buffer.extend(rows);
                continue;
            }
            let run = self
                .runs
                .database()
                .run(self.run_id)
                .await?
                .ok_or(RunError::NotFound)?;
            if run.last_seq > self.after_seq {
                // Written between the two reads.
                continue;
            }
            if run.state.is_terminal() {
                self.ended = true;
                continue;
            }
            tokio::select! {
                () = self.subscription.changed() => {}
                () = tokio::time::sleep(config.poll_interval) => {}
            }
        }
    }
}
