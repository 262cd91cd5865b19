//! Answers across server instances over one database: each instance is a `Services` with an
//! instance id of its own (and, for one that dies, a runtime and a connection pool of its own),
//! answering from a local upstream that streams slowly in OpenAI's wire format.
//!
//! - a reader on another instance follows an answer from its run's rows, from the first event
//!   or from a middle one, with the same numbers and events as the writing instance's memory;
//! - an answer whose instance dies mid-answer (its tasks dropped where they stand, as kill -9
//!   does) is recovered by another within the lease: marked interrupted with the text its rows
//!   hold, and its readers end;
//! - an instance that starts leaves a live answer of another alone (and still interrupts the
//!   answers left without any run);
//! - an instance whose answer was taken over writes nothing more;
//! - a stop asked for on an instance that does not write the answer stops it where it is
//!   written (woken by a notification on Postgres, by the writer's heartbeat on SQLite), as a
//!   local stop would.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use chrono::Utc;
use db::Backend;
use db::ids::{ConversationId, MessageId, RunId};
use db::sea_orm::{ActiveModelTrait, ActiveValue::Set};
use db::tables::messages::{MessageRole, MessageStatus};
use db::tables::runs::{self, RunState};
use db::testing::{TestDatabase, backends};
use futures::StreamExt;
use llm::testing::Upstream;
use services::chat::live::{AnswerBatch, AnswerEvent};
use services::chat::{ANSWER_RUN_KIND, AnswerFeed, ChatMessage, ContextInput};
use services::runs::{FlushConfig, LeaseConfig, Runs, RunsConfig};
use services::{AuthenticatedUser, Services};
use support::{pieces, stream_of};

/// Short leases, so that recovery comes within a test.
fn runs_config() -> RunsConfig {
    RunsConfig {
        lease: LeaseConfig {
            lease: Duration::from_secs(1),
            heartbeat: Duration::from_millis(200),
        },
        flush: FlushConfig::default(),
        poll_interval: Duration::from_millis(100),
        page_size: 500,
    }
}

/// An instance named `name` sharing the test's pool.
async fn instance(database: &TestDatabase, name: &str) -> Services {
    let mut services = support::services_with_gateway(database);
    services.runs = Runs::with_instance(database.database.clone(), name, runs_config());
    services.runs.listen().await.unwrap();
    services
}

/// An instance on a runtime and a connection pool of its own, which the test kills: its tasks
/// are dropped where they stand and nothing of them runs again, as with `kill -9`.
struct DoomedInstance {
    runtime: tokio::runtime::Handle,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    services: Services,
}

impl DoomedInstance {
    async fn start(url: &str, name: &str) -> Self {
        let (handle_sender, handle_receiver) = std::sync::mpsc::channel();
        let (kill, killed) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            handle_sender.send(runtime.handle().clone()).unwrap();
            // Until the test kills it (or drops it).
            killed.recv().unwrap_or(());
            runtime.shutdown_background();
        });
        let runtime = handle_receiver.recv().unwrap();
        let (url, name) = (url.to_owned(), name.to_owned());
        let services = runtime
            .spawn(async move {
                let database = db::Database::connect(&url).await.unwrap();
                let mut services = support::services_with_gateway_over(database.clone());
                services.runs = Runs::with_instance(database, name, runs_config());
                services
            })
            .await
            .unwrap();
        Self {
            runtime,
            kill: Some(kill),
            thread: Some(thread),
            services,
        }
    }

    /// Sends a message through this instance (its answer is generated on its runtime).
    async fn send(
        &self,
        user: &AuthenticatedUser,
        conversation: ConversationId,
        text: &str,
    ) -> MessageId {
        let (services, user, text) = (self.services.clone(), user.clone(), text.to_owned());
        self.runtime
            .spawn(async move {
                services
                    .send_message(&user, conversation, &text, ContextInput::default())
                    .await
                    .unwrap()
                    .answer
                    .message
                    .id
            })
            .await
            .unwrap()
    }

    /// Drops every task of the instance where it stands.
    fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            kill.send(()).unwrap();
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for DoomedInstance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What each test starts from: a throwaway database, a first instance on it, the local
/// upstream, and a user with a conversation asking the upstream's `echo`.
struct Scene {
    database: TestDatabase,
    first: Services,
    upstream: Upstream,
    user: AuthenticatedUser,
    cookie: String,
    conversation: ConversationId,
}

impl Scene {
    async fn start(backend: Backend, first: &str) -> Self {
        let database = TestDatabase::migrated(backend).await;
        let first = instance(&database, first).await;
        let upstream = Upstream::start().await.unwrap();
        let (user, cookie, conversation) = user_and_conversation(&first, &upstream).await;
        Self {
            database,
            first,
            upstream,
            user,
            cookie,
            conversation,
        }
    }

    /// Queues the next answer: `count` words, one every `gap`; returns them.
    fn queue_answer(&self, count: usize, gap: Duration) -> Vec<String> {
        let words = pieces(count);
        self.upstream.push(stream_of(&words).gap(gap));
        words
    }

    /// Sends a message through `services`; returns its answer's id.
    async fn send(&self, services: &Services, text: &str) -> MessageId {
        services
            .send_message(&self.user, self.conversation, text, ContextInput::default())
            .await
            .unwrap()
            .answer
            .message
            .id
    }
}

/// A signed-up user with the local upstream as provider, and a conversation asking its `echo`.
async fn user_and_conversation(
    services: &Services,
    upstream: &Upstream,
) -> (AuthenticatedUser, String, ConversationId) {
    let (user, cookie) = support::sign_up_with(services, "ada@example.com").await;
    support::add_local_provider(services, &user, "local", upstream).await;
    let conversation = services
        .create_conversation(&user, None, Some("chat"), Some("local/echo".into()))
        .await
        .unwrap()
        .id;
    (user, cookie, conversation)
}

/// Every event of the answer after `after`, as `services` serves it, within 30 s.
async fn follow_all(
    services: &Services,
    user: &AuthenticatedUser,
    answer: MessageId,
    after: u64,
) -> Vec<(u64, AnswerEvent)> {
    match services.follow_answer(user, answer, after).await.unwrap() {
        AnswerFeed::Live(events) => tokio::time::timeout(Duration::from_secs(30), events.collect())
            .await
            .expect("the answer's events end"),
        AnswerFeed::Stored(_) => panic!("the answer is being written"),
    }
}

/// Follows the answer on another task.
fn spawn_follow(
    services: &Services,
    user: &AuthenticatedUser,
    answer: MessageId,
    after: u64,
) -> tokio::task::JoinHandle<Vec<(u64, AnswerEvent)>> {
    let (services, user) = (services.clone(), user.clone());
    tokio::spawn(async move { follow_all(&services, &user, answer, after).await })
}

fn text_of(events: &[(u64, AnswerEvent)]) -> String {
    events
        .iter()
        .filter_map(|(_, event)| match event {
            AnswerEvent::Text(text) | AnswerEvent::Resumed { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// Checks that the events are numbered `after + 1, after + 2, …` and end with `Finished`;
/// returns its status and reason.
fn check_numbers(
    events: &[(u64, AnswerEvent)],
    after: u64,
    context: &str,
) -> (MessageStatus, Option<String>) {
    let numbers: Vec<u64> = events.iter().map(|(number, _)| *number).collect();
    let expected: Vec<u64> = (after + 1..=after + events.len() as u64).collect();
    assert_eq!(numbers, expected, "{context}: every number once, in order");
    match events.last() {
        Some((_, AnswerEvent::Finished { status, reason, .. })) => (*status, reason.clone()),
        other => panic!("{context}: the events end with {other:?}, not Finished"),
    }
}

async fn stored(services: &Services, user: &AuthenticatedUser, answer: MessageId) -> ChatMessage {
    let (message, _) = services
        .database
        .find_message(user.id, answer)
        .await
        .unwrap()
        .unwrap();
    message.into()
}

async fn answer_run(services: &Services, answer: MessageId) -> runs::Model {
    services
        .database
        .latest_run_about(ANSWER_RUN_KIND, &answer.to_string())
        .await
        .unwrap()
        .expect("the answer has a run")
}

/// Ends a run's lease now, as if its holder had stopped renewing it long ago.
async fn expire(services: &Services, run_id: RunId) {
    let mut run: runs::ActiveModel = services.database.run(run_id).await.unwrap().unwrap().into();
    run.lease_expires_at = Set(Some(Utc::now() - chrono::Duration::seconds(1)));
    run.update(services.database.connection()).await.unwrap();
}

#[tokio::test]
async fn a_reader_on_another_instance_follows_an_answer_from_any_number() {
    for backend in backends() {
        let scene = Scene::start(backend, "writer").await;
        let (writer, user, cookie) = (&scene.first, &scene.user, &scene.cookie);
        let reader = instance(&scene.database, "reader").await;
        let words = scene.queue_answer(30, Duration::from_millis(40));
        let answer = scene.send(writer, "Count").await;

        // From memory on the writing instance, from the database on the other.
        let local = spawn_follow(writer, user, answer, 0);
        let remote = spawn_follow(&reader, user, answer, 0);
        assert_eq!(
            reader.live_answers(),
            0,
            "the reader's instance generates nothing"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        let middle = spawn_follow(&reader, user, answer, 5);
        // The events endpoint of the other instance, resumed with Last-Event-ID.
        let router = support::router_for(reader.clone());
        let mut request = support::same_origin_request(
            "GET",
            &format!("/api/chat/answers/{answer}/events"),
            cookie,
            Vec::new(),
        );
        request
            .headers_mut()
            .insert("last-event-id", HeaderValue::from_static("2"));
        let reply = tokio::time::timeout(Duration::from_secs(30), support::send(&router, request))
            .await
            .expect("the response ends with the answer");

        let local = local.await.unwrap();
        let remote = remote.await.unwrap();
        let middle = middle.await.unwrap();
        let context = format!("{backend:?}");
        let (status, _) = check_numbers(&local, 0, &context);
        assert_eq!(status, MessageStatus::Complete, "{context}");
        assert_eq!(
            remote, local,
            "{context}: the same numbers and events everywhere"
        );
        check_numbers(&middle, 5, &context);
        assert_eq!(middle, local[5..], "{context}");
        let message = stored(writer, user, answer).await;
        assert_eq!(message.message.status, MessageStatus::Complete);
        assert_eq!(message.message.content, words.concat());
        assert_eq!(text_of(&remote), message.message.content, "{context}");

        assert_eq!(reply.status, StatusCode::OK, "{context}: {}", reply.body);
        let ids: Vec<u64> = reply
            .body
            .lines()
            .filter_map(|line| line.strip_prefix("id: "))
            .map(|id| id.parse().unwrap())
            .collect();
        assert_eq!(
            ids,
            (3..=local.len() as u64).collect::<Vec<_>>(),
            "{context}"
        );

        // Over: the stored message, on either instance.
        for services in [writer, &reader] {
            match services.follow_answer(user, answer, 0).await.unwrap() {
                AnswerFeed::Stored(message) => {
                    assert_eq!(message.message.content, words.concat());
                }
                AnswerFeed::Live(_) => panic!("{context}: a finished answer is not live"),
            }
        }
        let run = answer_run(&reader, answer).await;
        assert_eq!(run.state, RunState::Finished);
        assert!(
            run.last_seq < local.len() as i64,
            "{context}: {} rows for {} events: batched",
            run.last_seq,
            local.len()
        );
    }
}

#[tokio::test]
async fn an_answer_whose_instance_died_is_recovered_with_its_partial_text() {
    for backend in backends() {
        let scene = Scene::start(backend, "rescuer").await;
        let (rescuer, user) = (&scene.first, &scene.user);
        let mut doomed = DoomedInstance::start(&scene.database.url, "doomed").await;
        let words = scene.queue_answer(200, Duration::from_millis(40));
        let answer = doomed.send(user, scene.conversation, "Long").await;
        let reader = spawn_follow(rescuer, user, answer, 0);
        tokio::time::sleep(Duration::from_millis(700)).await;

        doomed.kill();
        let killed = tokio::time::Instant::now();
        let recovery = tokio::spawn(rescuer.clone().keep_recovering_answers());
        let events = reader.await.unwrap();
        let waited = killed.elapsed();
        recovery.abort();

        let context = format!("{backend:?}");
        let (status, reason) = check_numbers(&events, 0, &context);
        assert_eq!(status, MessageStatus::Interrupted, "{context}");
        assert!(reason.unwrap().contains("went away"), "{context}");
        // The lease (1 s), then a recovery round (every half lease), and some slack.
        assert!(
            waited < Duration::from_secs(4),
            "{context}: recovered after {waited:?}"
        );
        let message = stored(rescuer, user, answer).await;
        assert_eq!(message.message.status, MessageStatus::Interrupted);
        assert!(message.meta.reason.unwrap().contains("went away"));
        assert_eq!(message.meta.model.as_deref(), Some("echo"));
        let partial = message.message.content;
        assert!(!partial.is_empty(), "{context}: some text was written");
        assert!(
            words.concat().starts_with(&partial) && partial.len() < words.concat().len(),
            "{context}: {partial:?} is a beginning of the answer"
        );
        assert_eq!(text_of(&events), partial, "{context}");
        assert_eq!(
            answer_run(rescuer, answer).await.state,
            RunState::Interrupted
        );
        // The reader that comes back after the end gets the stored message.
        match rescuer
            .follow_answer(user, answer, events.len() as u64)
            .await
            .unwrap()
        {
            AnswerFeed::Stored(message) => assert_eq!(message.message.content, partial),
            AnswerFeed::Live(_) => panic!("{context}: a recovered answer is over"),
        }
    }
}

#[tokio::test]
async fn a_starting_instance_leaves_live_answers_alone_and_interrupts_those_without_a_run() {
    for backend in backends() {
        let scene = Scene::start(backend, "writer").await;
        let (writer, user) = (&scene.first, &scene.user);
        // An answer left `streaming` by a server from before runs.
        let old = writer
            .create_conversation(user, None, Some("chat"), None)
            .await
            .unwrap();
        let left = writer
            .database
            .append_messages(
                old.id,
                vec![
                    db::NewMessage {
                        role: MessageRole::User,
                        content: "Old question".into(),
                        status: MessageStatus::Complete,
                        metadata: None,
                    },
                    db::NewMessage {
                        role: MessageRole::Assistant,
                        content: "Old partial".into(),
                        status: MessageStatus::Streaming,
                        metadata: None,
                    },
                ],
                Utc::now() - chrono::Duration::hours(1),
            )
            .await
            .unwrap();
        let words = scene.queue_answer(60, Duration::from_millis(50));
        let answer = scene.send(writer, "Long").await;
        // Longer than a lease: the writer's heartbeats keep it.
        tokio::time::sleep(Duration::from_millis(1500)).await;

        let starting = instance(&scene.database, "starting").await;
        let context = format!("{backend:?}");
        assert_eq!(
            starting.interrupt_answers_without_run().await.unwrap(),
            1,
            "{context}: only the answer without a run"
        );
        assert_eq!(
            starting.recover_abandoned_answers().await.unwrap(),
            0,
            "{context}: a live lease is not recovered"
        );
        let old_answer = stored(&starting, user, left[1].id).await;
        assert_eq!(old_answer.message.status, MessageStatus::Interrupted);
        assert_eq!(old_answer.message.content, "Old partial");
        assert!(old_answer.meta.reason.unwrap().contains("restarted"));
        assert_eq!(
            stored(&starting, user, answer).await.message.status,
            MessageStatus::Streaming
        );
        // The new instance serves the live answer's rest, which ends complete.
        let events = follow_all(&starting, user, answer, 0).await;
        let (status, _) = check_numbers(&events, 0, &context);
        assert_eq!(status, MessageStatus::Complete, "{context}");
        let message = stored(writer, user, answer).await;
        assert_eq!(message.message.status, MessageStatus::Complete);
        assert_eq!(message.message.content, words.concat());
    }
}

#[tokio::test]
async fn an_instance_whose_answer_was_taken_over_writes_nothing_more() {
    for backend in backends() {
        let scene = Scene::start(backend, "stale").await;
        let (stale, user) = (&scene.first, &scene.user);
        let taker = instance(&scene.database, "taker").await;
        scene.queue_answer(100, Duration::from_millis(40));
        let answer = scene.send(stale, "Long").await;
        let local = spawn_follow(stale, user, answer, 0);
        tokio::time::sleep(Duration::from_millis(500)).await;

        // The lease expires (as when the holder's renewals stall) and the other instance
        // recovers the answer; the holder's heartbeats may renew it first, so try again.
        let run_id = answer_run(stale, answer).await.id;
        let mut recovered = 0;
        for _ in 0..100 {
            expire(&taker, run_id).await;
            recovered = taker.recover_abandoned_answers().await.unwrap();
            if recovered == 1 {
                break;
            }
        }
        assert_eq!(recovered, 1);
        let context = format!("{backend:?}");

        // The former holder stops and tells its own readers.
        let events = local.await.unwrap();
        let (status, reason) = check_numbers(&events, 0, &context);
        assert_eq!(status, MessageStatus::Interrupted, "{context}");
        assert!(reason.unwrap().contains("lost its hold"), "{context}");
        for _ in 0..100 {
            if stale.live_answers() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(stale.live_answers(), 0, "{context}");

        let message = stored(&taker, user, answer).await;
        let run = answer_run(&taker, answer).await;
        assert_eq!(message.message.status, MessageStatus::Interrupted);
        assert!(message.meta.reason.clone().unwrap().contains("went away"));
        assert_eq!(run.state, RunState::Interrupted);
        // Longer than the holder's checkpoints (2 s): nothing more is written.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let later = stored(&taker, user, answer).await;
        assert_eq!(
            later.message, message.message,
            "{context}: the message is untouched"
        );
        let later_run = answer_run(&taker, answer).await;
        assert_eq!(later_run.last_seq, run.last_seq, "{context}: no row added");
        assert_eq!(later_run.state, RunState::Interrupted);
        // What the run's rows hold is what the message says, ending with the taker's end.
        let mut rows = taker.runs.follow::<AnswerBatch>(run.id, 0);
        let mut written = Vec::new();
        while let Some(record) = rows.next().await.unwrap() {
            written.extend(record.event.numbered());
        }
        let (status, _) = check_numbers(&written, 0, &context);
        assert_eq!(status, MessageStatus::Interrupted, "{context}");
        assert_eq!(text_of(&written), message.message.content, "{context}");
    }
}

#[tokio::test]
async fn a_stop_on_another_instance_stops_the_answer_where_it_is_written() {
    for backend in backends() {
        let scene = Scene::start(backend, "writer").await;
        let (writer, user) = (&scene.first, &scene.user);
        let other = instance(&scene.database, "other").await;
        // 8 s of answer: a stop that did not reach the writer would let it complete.
        let words = scene.queue_answer(200, Duration::from_millis(40));
        let answer = scene.send(writer, "Long").await;
        let remote = spawn_follow(&other, user, answer, 0);
        let local = spawn_follow(writer, user, answer, 0);
        tokio::time::sleep(Duration::from_millis(600)).await;

        // Somebody else's stop is refused and stops nothing.
        let (intruder, _) = support::sign_up_with(&other, "eve@example.com").await;
        assert!(matches!(
            other.stop_answer(&intruder, answer).await,
            Err(services::Error::NotFound)
        ));
        let asked = tokio::time::Instant::now();
        other.stop_answer(user, answer).await.unwrap();
        let context = format!("{backend:?}");
        let events = remote.await.unwrap();
        let waited = asked.elapsed();
        assert_eq!(
            other.live_answers(),
            0,
            "{context}: nothing moved to the other instance"
        );

        let (status, reason) = check_numbers(&events, 0, &context);
        assert_eq!(status, MessageStatus::Interrupted, "{context}");
        assert_eq!(
            reason.as_deref(),
            Some("Stopped before the end."),
            "{context}"
        );
        // A notification (Postgres) or the writer's next heartbeat (every 200 ms here).
        assert!(
            waited < Duration::from_secs(3),
            "{context}: stopped after {waited:?}"
        );
        assert_eq!(
            local.await.unwrap(),
            events,
            "{context}: the same end everywhere"
        );
        let message = stored(writer, user, answer).await;
        assert_eq!(
            message.message.status,
            MessageStatus::Interrupted,
            "{context}"
        );
        assert_eq!(
            message.meta.reason.as_deref(),
            Some("Stopped before the end."),
            "{context}"
        );
        let partial = message.message.content;
        assert!(
            !partial.is_empty() && partial.len() < words.concat().len(),
            "{context}: {partial:?} is a beginning of the answer"
        );
        assert_eq!(text_of(&events), partial, "{context}");
        let run = answer_run(&other, answer).await;
        assert_eq!(run.state, RunState::Interrupted, "{context}");
        assert!(run.stop_requested_at.is_some(), "{context}");
        // Stopping an answer that is over changes nothing.
        other.stop_answer(user, answer).await.unwrap();
        assert_eq!(stored(&other, user, answer).await.message.content, partial);
    }
}
