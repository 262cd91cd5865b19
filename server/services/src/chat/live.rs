//! Answers being generated right now. Each keeps every event it produced, numbered from 1, so
//! that a browser that comes back (a reload, a dropped connection) asks for the events after
//! the last one it saw and misses nothing and sees nothing twice. Generation does not depend on
//! anyone listening.
//!
//! Every event is also handed to the answer's run ([`crate::runs`]), as an [`AnswerBatch`] of
//! consecutive numbered events: the run's writer merges them and writes one row per flush, so a
//! reader on another instance reads the same events under the same numbers. Handing an event to
//! the run never waits for the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use db::ids::{ConversationId, MessageId, UserId};
use db::queries::runs::RunLease;
use db::tables::messages::MessageStatus;
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::runs::{RunEvent, RunWriter};

/// One event of an answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerEvent {
    /// The whole text so far, when a generation continues an earlier partial answer.
    Resumed {
        text: String,
    },
    /// Which model answers, and why the ones before it did not.
    Answering {
        provider: String,
        model: String,
        fallback: Vec<super::FallbackNote>,
    },
    Text(String),
    Reasoning(String),
    /// The answer ended: `complete`, `interrupted` (stopped, cut or failed after output) or
    /// `failed` (nothing came), with why, and what it used.
    Finished {
        status: MessageStatus,
        reason: Option<String>,
        usage: Option<llm::Usage>,
        cost_micros: Option<u64>,
        /// What the answer was asked with.
        system_prompt: Option<String>,
    },
}

impl AnswerEvent {
    pub fn is_finished(&self) -> bool {
        matches!(self, AnswerEvent::Finished { .. })
    }

    /// The bytes of text it carries.
    fn text_bytes(&self) -> usize {
        match self {
            AnswerEvent::Resumed { text }
            | AnswerEvent::Text(text)
            | AnswerEvent::Reasoning(text) => text.len(),
            AnswerEvent::Answering { .. } | AnswerEvent::Finished { .. } => 0,
        }
    }
}

/// The event of an answer's run: consecutive answer events, the first numbered `first`. A
/// writer merges the batches of one flush into one (one row); a reader expands a row back into
/// its numbered events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerBatch {
    /// The number of the first event (the answer's own numbering, from 1).
    pub first: u64,
    pub events: Vec<AnswerEvent>,
}

impl AnswerBatch {
    /// The batch of one event.
    pub fn single(number: u64, event: AnswerEvent) -> Self {
        Self {
            first: number,
            events: vec![event],
        }
    }

    /// The number of the batch's last event (`first - 1` when it is empty).
    pub fn last(&self) -> u64 {
        (self.first + self.events.len() as u64).saturating_sub(1)
    }

    /// Its events, each with its number.
    pub fn numbered(self) -> impl Iterator<Item = (u64, AnswerEvent)> {
        (self.first..).zip(self.events)
    }
}

impl RunEvent for AnswerBatch {
    fn kind(&self) -> &str {
        "answer"
    }

    /// Takes `next` when it starts right after this batch's last event.
    fn merge(&mut self, mut next: Self) -> Result<(), Self> {
        if next.first != self.first + self.events.len() as u64 {
            return Err(next);
        }
        self.events.append(&mut next.events);
        Ok(())
    }

    fn buffered_bytes(&self) -> usize {
        self.events.iter().map(AnswerEvent::text_bytes).sum()
    }
}

/// Why an answer was asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopRequest {
    /// Its user pressed stop (or deleted or changed the conversation).
    ByUser,
    /// The server is shutting down.
    ServerShutdown,
}

/// An answer in progress.
pub struct LiveAnswer {
    pub owner: UserId,
    pub conversation: ConversationId,
    state: Mutex<LiveState>,
    /// The number of events so far; listeners wait for it to change.
    count: watch::Sender<u64>,
    /// Set to stop the generation.
    stop: watch::Sender<Option<StopRequest>>,
    /// Whether the run's lease is lost (another instance took the answer over), once a run
    /// is attached.
    lease: OnceLock<watch::Receiver<bool>>,
    /// Whether a stop was asked for on another instance (through the run), once a run is
    /// attached.
    stop_elsewhere: OnceLock<watch::Receiver<bool>>,
    /// The lease the answer's saves are fenced by, once a run is attached.
    fence: OnceLock<RunLease>,
}

/// What a live answer guards with one lock: its events and the run they are also written to.
struct LiveState {
    events: Vec<AnswerEvent>,
    /// The answer's run, until the generation takes it back to end it.
    run: Option<RunWriter<AnswerBatch>>,
}

impl LiveAnswer {
    fn new(owner: UserId, conversation: ConversationId) -> Self {
        Self {
            owner,
            conversation,
            state: Mutex::new(LiveState {
                events: Vec::new(),
                run: None,
            }),
            count: watch::channel(0).0,
            stop: watch::channel(None).0,
            lease: OnceLock::new(),
            stop_elsewhere: OnceLock::new(),
            fence: OnceLock::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// From now on every event is also written to `run` (under the same number); a lost lease
    /// wakes [`LiveAnswer::lease_lost`].
    pub fn attach_run(&self, run: RunWriter<AnswerBatch>) {
        let fence = run.lease();
        if self.lease.set(run.subscribe_lost()).is_err()
            || self.stop_elsewhere.set(run.subscribe_stop()).is_err()
            || self.fence.set(fence).is_err()
        {
            tracing::error!("a second run was attached to one live answer");
        }
        self.state().run = Some(run);
    }

    /// The lease of the answer's run, which its message's saves must still hold (`None`
    /// without a run).
    pub fn fence(&self) -> Option<&RunLease> {
        self.fence.get()
    }

    /// Takes the run back (to end it): events pushed after this stay in memory.
    pub fn take_run(&self) -> Option<RunWriter<AnswerBatch>> {
        self.state().run.take()
    }

    /// The number the next event will get.
    pub fn next_number(&self) -> u64 {
        self.state().events.len() as u64 + 1
    }

    /// Appends an event (and hands it to the run, without waiting); returns its sequence
    /// number.
    pub fn push(&self, event: AnswerEvent) -> u64 {
        let count = {
            let mut state = self.state();
            let number = state.events.len() as u64 + 1;
            if let Some(run) = &state.run
                && let Err(error) = run.push(AnswerBatch::single(number, event.clone()))
            {
                // The lease is lost: `lease_lost` stops the generation.
                tracing::debug!(%error, "an answer's event was not written to its run");
            }
            state.events.push(event);
            number
        };
        self.count.send_replace(count);
        count
    }

    /// Whether the run's lease was lost.
    pub fn is_lease_lost(&self) -> bool {
        self.lease.get().is_some_and(|lost| *lost.borrow())
    }

    /// Resolves once the run's lease is lost (never without a run).
    pub async fn lease_lost(&self) {
        let Some(mut receiver) = self.lease.get().cloned() else {
            return std::future::pending().await;
        };
        // An error: the writer is gone (ended), so the lease can no longer be lost.
        if receiver.wait_for(|lost| *lost).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// The events after sequence number `after`, each with its number.
    pub fn events_after(&self, after: u64) -> Vec<(u64, AnswerEvent)> {
        let state = self.state();
        let events = &state.events;
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(events.len());
        events[start..]
            .iter()
            .enumerate()
            .map(|(offset, event)| (after + offset as u64 + 1, event.clone()))
            .collect()
    }

    /// Whether its last event is the end.
    pub fn is_over(&self) -> bool {
        self.state()
            .events
            .last()
            .is_some_and(AnswerEvent::is_finished)
    }

    /// Asks the generation to stop (the first request's reason stays).
    pub fn request_stop(&self, request: StopRequest) {
        self.stop.send_if_modified(|stop| {
            if stop.is_some() {
                return false;
            }
            *stop = Some(request);
            true
        });
    }

    /// Resolves when a stop was asked for, here or (through the run) on another instance,
    /// with why.
    pub async fn stopped(&self) -> StopRequest {
        let mut receiver = self.stop.subscribe();
        let here = async {
            // An error means the sender is gone, which cannot happen while `self` lives.
            let request = receiver
                .wait_for(Option::is_some)
                .await
                .map(|request| *request);
            match request {
                Ok(request) => request.unwrap_or(StopRequest::ByUser),
                Err(_) => std::future::pending().await,
            }
        };
        let elsewhere = async {
            if let Some(mut receiver) = self.stop_elsewhere.get().cloned()
                && receiver.wait_for(|stop| *stop).await.is_ok()
            {
                return StopRequest::ByUser;
            }
            // No run, or its writer ended: no stop can come this way.
            std::future::pending().await
        };
        tokio::select! {
            request = here => request,
            request = elsewhere => request,
        }
    }

    /// What a follower at `after` gets now: the events after it, or whether to wait for more
    /// or to end. Decided under one lock, so that no event can come between the look and the
    /// decision.
    fn next_after(&self, after: u64) -> Next {
        let state = self.state();
        let events = &state.events;
        let given = events.len() as u64;
        if after < given {
            let start = usize::try_from(after).unwrap_or(usize::MAX);
            return Next::Events(
                events[start..]
                    .iter()
                    .enumerate()
                    .map(|(offset, event)| (after + offset as u64 + 1, event.clone()))
                    .collect(),
            );
        }
        // Nothing follows the end; and a number never given out cannot be continued from.
        if after > given || events.last().is_some_and(AnswerEvent::is_finished) {
            Next::End
        } else {
            Next::Wait
        }
    }

    /// The events after sequence number `after`, then each new one as it comes. The stream
    /// always ends, and never waits in vain:
    ///
    /// - after the `Finished` event (nothing that comes after it is sent);
    /// - at once, without an event, when the answer is over and `after` is its last event (the
    ///   reader has seen everything);
    /// - at once, without an event, when `after` is past the last event given out so far: this
    ///   answer never sent that number (a made-up or stale id, say from an earlier generation of
    ///   the same message), so the reader's state cannot be continued and nothing is waited
    ///   for. The events endpoint answers both of these with 204 No Content.
    ///
    /// Only a number the answer did give out (`after` up to its last event) waits for events to
    /// come, and then the answer's end always comes: the generation's task pushes `Finished`
    /// however it ends.
    pub fn follow(self: Arc<Self>, after: u64) -> impl Stream<Item = (u64, AnswerEvent)> + Send {
        let receiver = self.count.subscribe();
        futures::stream::unfold(
            (
                self,
                receiver,
                after,
                Vec::<(u64, AnswerEvent)>::new().into_iter(),
                false,
            ),
            |(live, mut receiver, mut after, mut pending, mut done)| async move {
                loop {
                    // Nothing follows the end, even when it came in one batch with more.
                    if done {
                        return None;
                    }
                    if let Some((sequence, event)) = pending.next() {
                        after = sequence;
                        if event.is_finished() {
                            done = true;
                        }
                        return Some(((sequence, event), (live, receiver, after, pending, done)));
                    }
                    receiver.mark_unchanged();
                    match live.next_after(after) {
                        Next::Events(batch) => pending = batch.into_iter(),
                        Next::End => return None,
                        Next::Wait => {
                            if receiver.changed().await.is_err() {
                                return None;
                            }
                        }
                    }
                }
            },
        )
    }
}

/// What a follower does next (see [`LiveAnswer::follow`]).
enum Next {
    Events(Vec<(u64, AnswerEvent)>),
    Wait,
    End,
}

/// Every answer being generated in this process.
#[derive(Default)]
pub struct LiveAnswers {
    answers: Mutex<HashMap<MessageId, Arc<LiveAnswer>>>,
}

impl LiveAnswers {
    /// Registers a new answer for `message`; `None` when one is being generated for it already
    /// (one message never has two generations).
    pub fn start(
        &self,
        message: MessageId,
        owner: UserId,
        conversation: ConversationId,
    ) -> Option<Arc<LiveAnswer>> {
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if answers.contains_key(&message) {
            return None;
        }
        let live = Arc::new(LiveAnswer::new(owner, conversation));
        answers.insert(message, Arc::clone(&live));
        Some(live)
    }

    /// The live answer for `message`, if it is `owner`'s.
    pub fn get(&self, message: MessageId, owner: UserId) -> Option<Arc<LiveAnswer>> {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&message)
            .filter(|live| live.owner == owner)
            .cloned()
    }

    /// Forgets `message`'s answer if it is still `live` (a newer one may have replaced it).
    pub fn finish(&self, message: MessageId, live: &Arc<LiveAnswer>) {
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if answers
            .get(&message)
            .is_some_and(|current| Arc::ptr_eq(current, live))
        {
            answers.remove(&message);
        }
    }

    /// Asks every live answer of a conversation to stop.
    pub fn stop_conversation(&self, conversation: ConversationId) {
        for live in self
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|live| live.conversation == conversation)
        {
            live.request_stop(StopRequest::ByUser);
        }
    }

    /// Asks every live answer to stop because the server is shutting down.
    pub fn stop_all_for_shutdown(&self) {
        for live in self
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            live.request_stop(StopRequest::ServerShutdown);
        }
    }

    /// How many answers are being generated.
    pub fn len(&self) -> usize {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn finished() -> AnswerEvent {
        AnswerEvent::Finished {
            status: MessageStatus::Complete,
            reason: None,
            usage: None,
            cost_micros: None,
            system_prompt: None,
        }
    }

    #[tokio::test]
    async fn a_listener_gets_every_event_after_its_last_once() {
        let answers = LiveAnswers::default();
        let message = MessageId::new();
        let owner = UserId::new();
        let live = answers
            .start(message, owner, ConversationId::new())
            .unwrap();
        assert!(
            answers
                .start(message, owner, ConversationId::new())
                .is_none(),
            "one generation per message"
        );
        for word in ["a", "b", "c"] {
            live.push(AnswerEvent::Text(word.into()));
        }
        assert!(
            answers.get(message, UserId::new()).is_none(),
            "only the owner"
        );
        let found = answers.get(message, owner).unwrap();
        let follower = tokio::spawn(found.follow(1).collect::<Vec<_>>());
        tokio::task::yield_now().await;
        live.push(AnswerEvent::Text("d".into()));
        live.push(finished());
        live.push(AnswerEvent::Text("after the end".into()));
        let seen = follower.await.unwrap();
        let numbers: Vec<u64> = seen.iter().map(|(sequence, _)| *sequence).collect();
        assert_eq!(numbers, [2, 3, 4, 5]);
        assert_eq!(seen[0].1, AnswerEvent::Text("b".into()));
        assert!(seen[3].1.is_finished());
        answers.finish(message, &live);
        assert!(answers.is_empty());
    }

    #[tokio::test]
    async fn a_follower_past_the_end_or_past_the_last_event_ends_at_once() {
        let answers = LiveAnswers::default();
        let message = MessageId::new();
        let live = answers
            .start(message, UserId::new(), ConversationId::new())
            .unwrap();
        let within = |stream| {
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                futures::StreamExt::collect::<Vec<_>>(stream),
            )
        };
        for word in ["a", "b"] {
            live.push(AnswerEvent::Text(word.into()));
        }
        // In progress: a number never given out ends at once, even after more events come.
        let never_given = Arc::clone(&live).follow(1000);
        live.push(AnswerEvent::Text("c".into()));
        assert!(within(never_given).await.unwrap().is_empty());
        assert!(
            within(Arc::clone(&live).follow(4))
                .await
                .unwrap()
                .is_empty()
        );
        // A number given out waits for what comes next, to the end.
        let caught_up = tokio::spawn(within(Arc::clone(&live).follow(3)));
        tokio::task::yield_now().await;
        live.push(finished());
        let seen = caught_up.await.unwrap().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].1.is_finished());
        // Over: its last event, or any number after it, ends at once.
        for after in [4, 5, 1000, u64::MAX] {
            let seen = within(Arc::clone(&live).follow(after)).await;
            assert!(seen.unwrap().is_empty(), "after {after}");
        }
        let seen = within(Arc::clone(&live).follow(2)).await.unwrap();
        assert_eq!(
            seen.iter().map(|(number, _)| *number).collect::<Vec<_>>(),
            [3, 4]
        );
        answers.finish(message, &live);
    }

    #[tokio::test]
    async fn a_stop_reaches_the_generation() {
        let answers = LiveAnswers::default();
        let conversation = ConversationId::new();
        let live = answers
            .start(MessageId::new(), UserId::new(), conversation)
            .unwrap();
        let waiting = tokio::spawn({
            let live = Arc::clone(&live);
            async move { live.stopped().await }
        });
        answers.stop_conversation(conversation);
        answers.stop_all_for_shutdown();
        let request = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            request,
            StopRequest::ByUser,
            "the first request's reason stays"
        );
    }

    #[test]
    fn batches_merge_only_when_adjacent_and_round_trip() {
        let mut batch = AnswerBatch::single(3, AnswerEvent::Text("ab".into()));
        assert!(
            batch
                .merge(AnswerBatch::single(4, AnswerEvent::Reasoning("c".into())))
                .is_ok()
        );
        assert!(
            batch
                .merge(AnswerBatch::single(6, AnswerEvent::Text("gap".into())))
                .is_err()
        );
        assert!(
            batch
                .merge(AnswerBatch::single(4, AnswerEvent::Text("again".into())))
                .is_err()
        );
        batch.merge(AnswerBatch::single(5, finished())).unwrap();
        assert_eq!(batch.last(), 5);
        assert_eq!(batch.buffered_bytes(), 3);
        let text = serde_json::to_string(&batch).unwrap();
        let read: AnswerBatch = serde_json::from_str(&text).unwrap();
        assert_eq!(read, batch);
        let numbers: Vec<u64> = read.numbered().map(|(number, _)| number).collect();
        assert_eq!(numbers, [3, 4, 5]);
    }
}
