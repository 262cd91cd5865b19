//! Answers being generated right now. Each keeps every event it produced, numbered from 1, so
//! that a browser that comes back (a reload, a dropped connection) asks for the events after
//! the last one it saw and misses nothing and sees nothing twice. Generation does not depend on
//! anyone listening.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use db::ids::{ConversationId, MessageId, UserId};
use db::tables::messages::MessageStatus;
use futures::Stream;
use tokio::sync::watch;

/// One event of an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
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
        usage: Option<super::UsageNote>,
        cost_micros: Option<u64>,
        /// What the answer was asked with.
        system_prompt: Option<String>,
    },
}

impl AnswerEvent {
    pub fn is_finished(&self) -> bool {
        matches!(self, AnswerEvent::Finished { .. })
    }
}

/// An answer in progress.
pub struct LiveAnswer {
    pub owner: UserId,
    pub conversation: ConversationId,
    events: Mutex<Vec<AnswerEvent>>,
    /// The number of events so far; listeners wait for it to change.
    count: watch::Sender<u64>,
    /// Set to `true` to stop the generation.
    stop: watch::Sender<bool>,
}

impl LiveAnswer {
    fn new(owner: UserId, conversation: ConversationId) -> Self {
        Self {
            owner,
            conversation,
            events: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            stop: watch::channel(false).0,
        }
    }

    /// Appends an event; returns its sequence number.
    pub fn push(&self, event: AnswerEvent) -> u64 {
        let count = {
            let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            events.push(event);
            events.len() as u64
        };
        self.count.send_replace(count);
        count
    }

    /// The events after sequence number `after`, each with its number.
    pub fn events_after(&self, after: u64) -> Vec<(u64, AnswerEvent)> {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
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
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .is_some_and(AnswerEvent::is_finished)
    }

    pub fn request_stop(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves when a stop was asked for.
    pub async fn stopped(&self) {
        let mut receiver = self.stop.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        if receiver.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// What a follower at `after` gets now: the events after it, or whether to wait for more
    /// or to end. Decided under one lock, so that no event can come between the look and the
    /// decision.
    fn next_after(&self, after: u64) -> Next {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
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
            live.request_stop();
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
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
    }
}
