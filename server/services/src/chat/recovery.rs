//! Answers across instances: following an answer another instance writes (from its run's
//! rows), recovering the answers of an instance that died (their runs' leases expired), the
//! answers left by servers from before runs, and ending this instance's answers at shutdown.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use chrono::Utc;
use db::ids::{MessageId, RunId};
use db::tables::messages::MessageStatus;
use db::tables::runs::{self, RunState};
use futures::Stream;

use super::live::{AnswerBatch, AnswerEvent};
use super::{ANSWER_RUN_KIND, MessageMeta};
use crate::runs::{RunError, RunReader, RunWriter, Runs};
use crate::{Error, Services};

/// Why an answer whose instance went away is interrupted.
const RECOVERED_REASON: &str = "The server writing this answer went away before its end; what arrived is kept. Continue or regenerate it.";
/// Why an answer left `streaming` by a server from before runs is interrupted.
const LEGACY_REASON: &str = "The server restarted while this answer was being written; what arrived is kept. Continue or regenerate it.";

/// An answer's numbered events.
pub type AnswerStream = Pin<Box<dyn Stream<Item = (u64, AnswerEvent)> + Send>>;

/// Follows an answer's run from the database: its events numbered after `after`, each once and
/// in order, to its `Finished` event. Empty (nothing to send, nothing to wait for) when `after`
/// is past the last row of an answer that is over, or is its last event.
///
/// A number past the rows of a live run is followed, not refused: the writing instance gives
/// its own readers each event at once and writes its rows every flush interval, so a reader
/// that moves to this instance may be ahead of the rows. The rows catch up and the reader goes
/// on from its number; if the writer died first, the events it never wrote are lost, the
/// recovery ends the run, and the stream ends without an event (the reader, connecting again,
/// gets the answer as stored).
pub(super) async fn follow_run(
    runs: Runs,
    run: &runs::Model,
    after: u64,
) -> Result<AnswerStream, Error> {
    if after > 0 {
        let given = last_number(&runs, run).await?;
        if run.state.is_terminal() && after >= given {
            return Ok(Box::pin(futures::stream::empty()));
        }
    }
    let follower = RunFollower {
        reader: runs.follow::<AnswerBatch>(run.id, 0),
        pending: VecDeque::new(),
        after,
        done: false,
    };
    Ok(Box::pin(futures::stream::unfold(
        follower,
        |mut follower| async move { follower.next().await.map(|event| (event, follower)) },
    )))
}

/// A reader of an answer's run that expands its batches into numbered events.
struct RunFollower {
    reader: RunReader<AnswerBatch>,
    pending: VecDeque<(u64, AnswerEvent)>,
    /// The number of the last event returned (or asked to start after).
    after: u64,
    done: bool,
}

impl RunFollower {
    /// The next event after the last one, `None` after `Finished`, at the run's end or when the
    /// rows cannot be read (the reader reconnects with its last number).
    async fn next(&mut self) -> Option<(u64, AnswerEvent)> {
        loop {
            if self.done {
                return None;
            }
            if let Some((number, event)) = self.pending.pop_front() {
                if number <= self.after {
                    continue;
                }
                self.after = number;
                self.done = event.is_finished();
                return Some((number, event));
            }
            match self.reader.next().await {
                Ok(Some(record)) => self.pending.extend(record.event.numbered()),
                Ok(None) => return None,
                Err(error) => {
                    tracing::warn!(run = %self.reader.run_id(), %error, "following an answer's run failed");
                    return None;
                }
            }
        }
    }
}

/// The number of the last event the run's rows hold now (0 when none).
async fn last_number(runs: &Runs, run: &runs::Model) -> Result<u64, Error> {
    // From the last row known; rows written since come too, and the last one counts.
    let rows = runs
        .database()
        .run_events_after(
            run.id,
            run.last_seq.saturating_sub(1),
            runs.config().page_size,
        )
        .await?;
    match rows.last() {
        Some(row) => Ok(decode(&row.payload)?.last()),
        None => Ok(0),
    }
}

fn decode(payload: &str) -> Result<AnswerBatch, RunError> {
    Ok(serde_json::from_str(payload)?)
}

/// Every event of the run up to row `last_seq`, each with its number.
async fn written_events(
    runs: &Runs,
    run_id: RunId,
    last_seq: i64,
) -> Result<Vec<(u64, AnswerEvent)>, RunError> {
    let mut events = Vec::new();
    let mut after = 0;
    while after < last_seq {
        let rows = runs
            .database()
            .run_events_after(run_id, after, runs.config().page_size)
            .await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.seq;
        for row in rows {
            events.extend(decode(&row.payload)?.numbered());
        }
    }
    Ok(events)
}

/// What an answer's written events add up to.
#[derive(Debug, Default)]
struct Partial {
    text: String,
    reasoning: String,
    provider: Option<String>,
    model: Option<String>,
    fallback: Vec<super::FallbackNote>,
    /// The number of the last event.
    last: u64,
    finished: bool,
}

impl Partial {
    fn of(events: Vec<(u64, AnswerEvent)>) -> Self {
        let mut partial = Self::default();
        for (number, event) in events {
            partial.last = partial.last.max(number);
            match event {
                AnswerEvent::Resumed { text } => partial.text = text,
                AnswerEvent::Text(text) => partial.text.push_str(&text),
                AnswerEvent::Reasoning(text) => partial.reasoning.push_str(&text),
                AnswerEvent::Answering {
                    provider,
                    model,
                    fallback,
                } => {
                    partial.provider = Some(provider);
                    partial.model = Some(model);
                    partial.fallback = fallback;
                }
                AnswerEvent::Finished { .. } => partial.finished = true,
            }
        }
        partial
    }
}

impl Services {
    /// Recovers the answers whose instance went away (their run's lease expired): each is
    /// claimed by this instance, its message marked interrupted with the text its run's rows
    /// hold, and its run ended with a `Finished` event, so that its readers everywhere end.
    /// Returns how many. Runs another instance holds are never touched.
    pub async fn recover_abandoned_answers(&self) -> Result<usize, Error> {
        let recovered = self
            .runs
            .recover::<AnswerBatch, _, _>(ANSWER_RUN_KIND, |writer| {
                let services = self.clone();
                async move { services.interrupt_recovered(writer).await }
            })
            .await?;
        Ok(recovered)
    }

    /// Ends one recovered answer's run, and its message if it was still being written.
    async fn interrupt_recovered(&self, writer: RunWriter<AnswerBatch>) -> Result<(), RunError> {
        let run = writer.run().clone();
        let partial = Partial::of(written_events(&self.runs, run.id, run.last_seq).await?);
        let message = match run.subject.as_deref().map(str::parse::<MessageId>) {
            Some(Ok(id)) => self.database.message_by_id(id).await?,
            _ => None,
        };
        let (status, reason) = match message {
            Some(message) if message.status == MessageStatus::Streaming => {
                let mut meta = MessageMeta::of(&message);
                meta.reason = Some(RECOVERED_REASON.to_owned());
                if partial.provider.is_some() {
                    meta.provider = partial.provider;
                    meta.model = partial.model;
                    meta.fallback = partial.fallback;
                }
                if !partial.reasoning.is_empty() {
                    let mut reasoning = meta.reasoning.take().unwrap_or_default();
                    reasoning.push_str(&partial.reasoning);
                    meta.reasoning = Some(reasoning);
                }
                self.database
                    .update_message_under_lease(
                        &writer.lease(),
                        message.id,
                        Some(partial.text),
                        Some(MessageStatus::Interrupted),
                        Some(meta.to_json()),
                        Utc::now(),
                    )
                    .await?;
                (
                    MessageStatus::Interrupted,
                    Some(RECOVERED_REASON.to_owned()),
                )
            }
            // Saved as final before its instance went away (or deleted): it stays as it is.
            Some(message) => (message.status, MessageMeta::of(&message).reason),
            None => (
                MessageStatus::Interrupted,
                Some(RECOVERED_REASON.to_owned()),
            ),
        };
        if !partial.finished {
            writer.push(AnswerBatch::single(
                partial.last + 1,
                AnswerEvent::Finished {
                    status,
                    reason,
                    usage: None,
                    cost_micros: None,
                    system_prompt: None,
                },
            ))?;
        }
        writer.finish(RunState::Interrupted).await
    }

    /// Recovers abandoned answers now and then every half lease, for as long as the process
    /// runs (a failed round is logged; the next one tries again).
    pub async fn keep_recovering_answers(self) {
        let period = (self.runs.config().lease.lease / 2).max(Duration::from_millis(100));
        let mut rounds = tokio::time::interval(period);
        rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            rounds.tick().await;
            match self.recover_abandoned_answers().await {
                Ok(0) => {}
                Ok(answers) => {
                    tracing::info!(
                        answers,
                        "answers whose server went away are marked interrupted"
                    );
                }
                Err(error) => tracing::warn!(%error, "recovering abandoned answers failed"),
            }
        }
    }

    /// Marks interrupted the answers left `streaming` that have no run at all (written by a
    /// server from before runs): run at start. Answers with a run, live or not, are left to
    /// their writer or to [`Services::recover_abandoned_answers`]; an answer changed within
    /// the last lease is left alone too (its run may be being created).
    pub async fn interrupt_answers_without_run(&self) -> Result<u64, Error> {
        let lease = chrono::Duration::from_std(self.runs.config().lease.lease)
            .unwrap_or_else(|_| chrono::Duration::seconds(15));
        let now = Utc::now();
        Ok(self
            .database
            .interrupt_streaming_messages_without_run(
                ANSWER_RUN_KIND,
                now - lease,
                LEGACY_REASON,
                now,
            )
            .await?)
    }

    /// Graceful shutdown: asks every answer this instance generates to stop, so each is saved
    /// as interrupted with its text and its run ended (its readers everywhere end), and waits
    /// for them, at most `within`. Returns how many were still running then (their runs are
    /// recovered by another instance once their lease expires).
    pub async fn stop_answers_for_shutdown(&self, within: Duration) -> usize {
        self.live.stop_all_for_shutdown();
        let deadline = tokio::time::Instant::now() + within;
        while !self.live.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.live.len()
    }
}
