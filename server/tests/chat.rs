//! Chat against a local upstream speaking the OpenAI wire format: the question is stored before
//! any provider is called, answers are generated server-side and resumed from a sequence number
//! with no gap and no duplicate, stop keeps the partial text, failures keep it with the reason,
//! fallback is shown on the message, streams reattach only for their owner and from this site,
//! continue / regenerate / edit, modes, search. Answers across instances (and left by a stopped
//! one) are in `chat_instances.rs`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use db::ids::{ConversationId, MessageId};
use db::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use db::tables::api_usage;
use db::tables::messages::{MessageRole, MessageStatus};
use db::testing::{TestDatabase, backends};
use futures::StreamExt;
use llm::testing::{End, Reply, Upstream, openai};
use services::chat::live::AnswerEvent;
use services::chat::{AnswerFeed, ChatMessage, ContextInput, CurrentFile, ModeInput, Selection};
use services::{AuthenticatedUser, Services};
use support::{pieces, stream_of};

struct Setup {
    database: TestDatabase,
    services: Services,
    user: AuthenticatedUser,
    cookie: String,
    local: Upstream,
}

fn services_with_gateway(database: &TestDatabase) -> Services {
    support::services_with_gateway(database)
}

async fn sign_up(services: &Services, email: &str) -> (AuthenticatedUser, String) {
    support::sign_up_with(services, email).await
}

async fn add_local(
    services: &Services,
    user: &AuthenticatedUser,
    label: &str,
    upstream: &Upstream,
) {
    support::add_local_provider(services, user, label, upstream).await;
}

async fn setup(backend: db::Backend) -> Setup {
    let database = TestDatabase::migrated(backend).await;
    let services = services_with_gateway(&database);
    let (user, cookie) = sign_up(&services, "ada@example.com").await;
    let local = Upstream::start().await.unwrap();
    add_local(&services, &user, "local", &local).await;
    Setup {
        database,
        services,
        user,
        cookie,
        local,
    }
}

impl Setup {
    /// A conversation that asks the local server's `echo` model.
    async fn conversation(&self) -> ConversationId {
        self.services
            .create_conversation(&self.user, None, Some("chat"), Some("local/echo".into()))
            .await
            .unwrap()
            .id
    }

    async fn send(&self, conversation: ConversationId, text: &str) -> services::chat::Sent {
        self.services
            .send_message(&self.user, conversation, text, ContextInput::default())
            .await
            .unwrap()
    }

    async fn follow(&self, answer: MessageId, after: u64) -> AnswerFeed {
        self.services
            .follow_answer(&self.user, answer, after)
            .await
            .unwrap()
    }

    async fn message(&self, id: MessageId) -> ChatMessage {
        let (message, _) = self
            .services
            .database
            .find_message(self.user.id, id)
            .await
            .unwrap()
            .unwrap();
        message.into()
    }

    /// The text of every message of a conversation, in order.
    async fn texts(&self, conversation: ConversationId) -> Vec<String> {
        let (_, messages) = self
            .services
            .conversation(&self.user, conversation)
            .await
            .unwrap();
        messages
            .into_iter()
            .map(|message| message.message.content)
            .collect()
    }

    /// Waits until the answer is no longer generated, then reads it.
    async fn finished(&self, id: MessageId) -> ChatMessage {
        if let AnswerFeed::Live(events) = self.follow(id, 0).await {
            tokio::time::timeout(Duration::from_secs(20), events.collect::<Vec<_>>())
                .await
                .expect("the answer finishes");
        }
        self.message(id).await
    }
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

#[tokio::test]
async fn the_question_is_stored_before_the_provider_is_called() {
    for backend in backends() {
        let setup = setup(backend).await;
        let conversation = setup.conversation().await;
        setup
            .local
            .push(stream_of(&pieces(3)).first_byte_delay(Duration::from_millis(400)));
        let sent = setup.send(conversation, "Why is the sky blue?").await;
        // The provider has not answered yet, and both rows are there.
        let (_, messages) = setup
            .services
            .conversation(&setup.user, conversation)
            .await
            .unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].message.role, MessageRole::User);
        assert_eq!(messages[0].message.content, "Why is the sky blue?");
        assert_eq!(messages[0].message.status, MessageStatus::Complete);
        assert_eq!(messages[1].message.id, sent.answer.message.id);
        assert_eq!(messages[1].message.status, MessageStatus::Streaming);
        assert_eq!(messages[1].message.content, "");
        let answer = setup.finished(sent.answer.message.id).await;
        assert_eq!(answer.message.status, MessageStatus::Complete);
        assert_eq!(answer.message.content, "w0 w1 w2 ");
        assert_eq!(answer.meta.model.as_deref(), Some("echo"));
        assert_eq!(answer.meta.provider.as_deref(), Some("openai_compatible"));
        assert_eq!(answer.meta.usage.unwrap().output_tokens, 3);
        // The first message named the conversation.
        let (conversation_row, _) = setup
            .services
            .conversation(&setup.user, conversation)
            .await
            .unwrap();
        assert_eq!(conversation_row.title, "Why is the sky blue?");
        // The provider got the system prompt of the mode, then the question.
        let request = setup.local.received().last().unwrap().json();
        assert_eq!(request["model"], "echo");
        assert_eq!(request["messages"][0]["role"], "system");
        assert_eq!(request["messages"][1]["content"], "Why is the sky blue?");

        // Without any provider the question is kept and the answer says what to do.
        let (other, _) = sign_up(&setup.services, "bob@example.com").await;
        let lonely = setup
            .services
            .create_conversation(&other, None, None, None)
            .await
            .unwrap();
        let sent = setup
            .services
            .send_message(&other, lonely.id, "Hello?", ContextInput::default())
            .await
            .unwrap();
        if let AnswerFeed::Live(events) = setup
            .services
            .follow_answer(&other, sent.answer.message.id, 0)
            .await
            .unwrap()
        {
            events.collect::<Vec<_>>().await;
        }
        let (_, messages) = setup
            .services
            .conversation(&other, lonely.id)
            .await
            .unwrap();
        assert_eq!(messages[0].message.content, "Hello?");
        assert_eq!(messages[1].message.status, MessageStatus::Failed);
        assert!(
            messages[1]
                .meta
                .reason
                .as_deref()
                .unwrap()
                .contains("No AI provider is configured"),
            "{:?}",
            messages[1].meta.reason
        );
    }
}

#[tokio::test]
async fn a_reader_that_comes_back_resumes_with_no_gap_and_no_duplicate() {
    for backend in backends() {
        let setup = setup(backend).await;
        let conversation = setup.conversation().await;
        let words = pieces(12);
        setup
            .local
            .push(stream_of(&words).gap(Duration::from_millis(40)));
        let sent = setup.send(conversation, "Count").await;
        let answer = sent.answer.message.id;

        // A first reader sees a few events and goes away (a reload).
        let AnswerFeed::Live(events) = setup.follow(answer, 0).await else {
            panic!("the answer is live");
        };
        let first: Vec<(u64, AnswerEvent)> = events.take(4).collect().await;
        let last_seen = first.last().unwrap().0;
        // The answer goes on without anyone listening.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let AnswerFeed::Live(events) = setup.follow(answer, last_seen).await else {
            panic!("still live");
        };
        let rest: Vec<(u64, AnswerEvent)> =
            tokio::time::timeout(Duration::from_secs(10), events.collect())
                .await
                .unwrap();
        let numbers: Vec<u64> = first
            .iter()
            .chain(&rest)
            .map(|(number, _)| *number)
            .collect();
        let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
        assert_eq!(numbers, expected, "every number once, in order");
        assert!(rest.last().unwrap().1.is_finished());
        let mut all = first.clone();
        all.extend(rest);
        assert_eq!(text_of(&all), words.concat());

        // Once finished, the stored message is what a reader gets.
        let stored = setup.message(answer).await;
        assert_eq!(stored.message.content, words.concat());
        match setup.follow(answer, 0).await {
            AnswerFeed::Stored(message) => assert_eq!(message.message.content, words.concat()),
            AnswerFeed::Live(_) => panic!("finished answers are not live"),
        }
        // The call's usage row points at the conversation and the answer.
        setup.services.flush_usage().await;
        let rows = api_usage::Entity::find()
            .filter(api_usage::Column::MessageId.eq(answer))
            .all(setup.database.database.connection())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].conversation_id, Some(conversation));
        assert_eq!(rows[0].outcome, "ok");
        let listed = setup
            .services
            .conversations(&setup.user, None, None)
            .await
            .unwrap();
        assert_eq!(listed[0].totals.output_tokens, 12);
    }
}

#[tokio::test]
async fn stop_keeps_the_partial_answer_and_continue_finishes_it() {
    for backend in backends() {
        let setup = setup(backend).await;
        let conversation = setup.conversation().await;
        setup
            .local
            .push(stream_of(&pieces(40)).gap(Duration::from_millis(50)));
        let sent = setup.send(conversation, "Write a lot").await;
        let answer = sent.answer.message.id;
        let AnswerFeed::Live(events) = setup.follow(answer, 0).await else {
            panic!("live");
        };
        let seen: Vec<(u64, AnswerEvent)> = events.take(4).collect().await;
        setup
            .services
            .stop_answer(&setup.user, answer)
            .await
            .unwrap();
        let stopped = setup.finished(answer).await;
        assert_eq!(stopped.message.status, MessageStatus::Interrupted);
        assert_eq!(
            stopped.meta.reason.as_deref(),
            Some("Stopped before the end.")
        );
        assert!(stopped.message.content.starts_with(&text_of(&seen)));
        assert!(stopped.message.content.len() < pieces(40).concat().len());
        let partial = stopped.message.content.clone();

        // Continue: the model gets the partial answer and is asked to go on; the text grows
        // in place.
        setup
            .local
            .push(stream_of(&["the end.".to_owned()]).first_byte_delay(Duration::from_millis(200)));
        // Two clicks on Continue start one generation.
        let (first, second) = tokio::join!(
            setup.services.continue_answer(&setup.user, answer),
            setup.services.continue_answer(&setup.user, answer)
        );
        let continued = match (first, second) {
            (Ok(continued), Err(services::Error::Invalid(_)))
            | (Err(services::Error::Invalid(_)), Ok(continued)) => continued,
            other => panic!("one continue must win and one be refused: {other:?}"),
        };
        assert_eq!(continued.message.id, answer);
        let done = setup.finished(answer).await;
        assert_eq!(done.message.status, MessageStatus::Complete);
        assert_eq!(done.message.content, format!("{partial}the end."));
        let request = setup.local.received().last().unwrap().json();
        let messages = request["messages"].as_array().unwrap();
        assert_eq!(messages[messages.len() - 2]["role"], "assistant");
        assert_eq!(messages[messages.len() - 2]["content"], partial);
        assert!(
            messages[messages.len() - 1]["content"]
                .as_str()
                .unwrap()
                .contains("Continue")
        );
        // Stopping someone else's answer is refused as if it did not exist.
        let (other, _) = sign_up(&setup.services, "eve@example.com").await;
        assert!(matches!(
            setup.services.stop_answer(&other, answer).await,
            Err(services::Error::NotFound)
        ));
    }
}

#[tokio::test]
async fn failures_keep_the_partial_answer_with_the_reason() {
    for backend in backends() {
        let setup = setup(backend).await;
        let conversation = setup.conversation().await;
        // Cut after three chunks.
        let words = pieces(8);
        setup.local.push(stream_of(&words).cut_after(3, End::Abort));
        let sent = setup.send(conversation, "Go").await;
        let cut = setup.finished(sent.answer.message.id).await;
        assert_eq!(cut.message.status, MessageStatus::Interrupted);
        assert!(!cut.message.content.is_empty());
        assert!(words.concat().starts_with(&cut.message.content));
        assert!(cut.meta.reason.as_deref().unwrap().contains("cut off"));

        // An error inside the stream after some text.
        let mut frames = openai::text_stream(&["half ", "an "], 5, 2);
        frames.truncate(2);
        frames.push(openai::error_frame("The server had an error"));
        setup.local.push(Reply::sse(frames));
        let sent = setup.send(conversation, "Again").await;
        let broken = setup.finished(sent.answer.message.id).await;
        assert_eq!(broken.message.status, MessageStatus::Interrupted);
        assert!(broken.message.content.starts_with("half"));
        assert!(broken.meta.reason.is_some());

        // A refused request before any text: failed, said plainly, nothing retried.
        setup.local.push(openai::error(
            400,
            "invalid_request_error",
            Some("context_length_exceeded"),
            "This model's maximum context length is 8192 tokens.",
        ));
        let sent = setup.send(conversation, "Too long").await;
        let failed = setup.finished(sent.answer.message.id).await;
        assert_eq!(failed.message.status, MessageStatus::Failed);
        assert_eq!(failed.message.content, "");
        assert!(
            failed
                .meta
                .reason
                .as_deref()
                .unwrap()
                .contains("context window"),
            "{:?}",
            failed.meta.reason
        );
        // The questions are all still there.
        let (_, messages) = setup
            .services
            .conversation(&setup.user, conversation)
            .await
            .unwrap();
        let questions: Vec<&str> = messages
            .iter()
            .filter(|message| message.message.role == MessageRole::User)
            .map(|message| message.message.content.as_str())
            .collect();
        assert_eq!(questions, ["Go", "Again", "Too long"]);
    }
}

#[tokio::test]
async fn a_failing_model_falls_back_to_the_next_and_the_answer_says_so() {
    for backend in backends() {
        let setup = setup(backend).await;
        let broken = Upstream::start().await.unwrap();
        broken.always(openai::error(500, "server_error", None, "boom"));
        add_local(&setup.services, &setup.user, "broken", &broken).await;
        // A mode whose suggested model is the working server's.
        setup
            .services
            .create_mode(
                &setup.user,
                ModeInput {
                    name: "careful".into(),
                    system_prompt: "Be careful.".into(),
                    models: vec!["local/echo".into()],
                    ..ModeInput::default()
                },
            )
            .await
            .unwrap();
        let conversation = setup
            .services
            .create_conversation(
                &setup.user,
                None,
                Some("careful"),
                Some("broken/big".into()),
            )
            .await
            .unwrap();
        // The model lists first (to know what the user has), then the answer.
        setup.local.push(openai::models(&["echo"]));
        setup.local.push(stream_of(&pieces(2)));
        let sent = setup.send(conversation.id, "Hi").await;
        let answer = setup.finished(sent.answer.message.id).await;
        assert_eq!(
            answer.message.status,
            MessageStatus::Complete,
            "{:?}",
            answer.meta
        );
        assert_eq!(answer.meta.requested_models, ["broken/big", "local/echo"]);
        assert_eq!(answer.meta.model.as_deref(), Some("echo"));
        assert_eq!(answer.meta.fallback.len(), 1);
        assert_eq!(answer.meta.fallback[0].model, "big");
        assert!(answer.meta.fallback[0].reason.contains("provider failed"));
        assert_eq!(
            answer.meta.system_prompt.as_deref(),
            Some("Be careful."),
            "the user's mode's prompt"
        );
    }
}

#[tokio::test]
async fn regenerate_and_edit_replace_what_followed() {
    for backend in backends() {
        let setup = setup(backend).await;
        let conversation = setup.conversation().await;
        setup.local.push(stream_of(&["first".to_owned()]));
        let sent = setup.send(conversation, "One").await;
        setup.finished(sent.answer.message.id).await;

        setup.local.push(stream_of(&["second".to_owned()]));
        let again = setup
            .services
            .regenerate(&setup.user, sent.answer.message.id)
            .await
            .unwrap();
        assert_ne!(again.message.id, sent.answer.message.id);
        assert_eq!(
            setup.finished(again.message.id).await.message.content,
            "second"
        );

        setup.local.push(stream_of(&["third".to_owned()]));
        let edited = setup
            .services
            .edit_and_resend(&setup.user, sent.question.message.id, "One, edited")
            .await
            .unwrap();
        setup.finished(edited.answer.message.id).await;
        assert_eq!(setup.texts(conversation).await, ["One, edited", "third"]);
        let request = setup.local.received().last().unwrap().json();
        assert_eq!(request["messages"][1]["content"], "One, edited");

        // A mode that refuses the resend (async starts tasks, it does not answer) changes nothing: neither the
        // edit nor the answer after it.
        setup
            .services
            .set_conversation_mode(&setup.user, conversation, "async")
            .await
            .unwrap();
        let refused = setup
            .services
            .edit_and_resend(&setup.user, sent.question.message.id, "One, edited twice")
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("background task"), "{refused}");
        let refused = setup
            .services
            .regenerate(&setup.user, edited.answer.message.id)
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("background task"), "{refused}");
        assert_eq!(setup.texts(conversation).await, ["One, edited", "third"]);
    }
}

#[tokio::test]
async fn context_is_sent_and_recorded_with_the_question() {
    for backend in backends() {
        let setup = setup(backend).await;
        let conversation = setup.conversation().await;
        setup.local.push(stream_of(&["ok".to_owned()]));
        let sent = setup
            .services
            .send_message(
                &setup.user,
                conversation,
                "What does this do?",
                ContextInput {
                    current_file: Some(CurrentFile {
                        path: "src/lib.rs".into(),
                        language: Some("rust".into()),
                        content: "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n".into(),
                        selection: Some(Selection {
                            start_line: 2,
                            end_line: 2,
                            text: "    a + b".into(),
                        }),
                    }),
                },
            )
            .await
            .unwrap();
        setup.finished(sent.answer.message.id).await;
        let question = setup.message(sent.question.message.id).await;
        let kinds: Vec<&str> = question
            .meta
            .context
            .iter()
            .map(|item| item.kind.as_str())
            .collect();
        assert_eq!(kinds, ["selection", "current_file"]);
        assert!(question.meta.context.iter().all(|item| item.included));
        let request = setup.local.received().last().unwrap().json();
        let system = request["messages"][0]["content"].as_str().unwrap();
        assert!(system.contains("src/lib.rs:2-2"));
        assert!(system.contains("pub fn add"));
        let answer = setup.message(sent.answer.message.id).await;
        assert_eq!(answer.meta.system_prompt.as_deref(), Some(system));
    }
}

#[tokio::test]
async fn conversations_modes_and_search() {
    for backend in backends() {
        let setup = setup(backend).await;
        let services = &setup.services;
        let first = setup.conversation().await;
        setup.local.push(stream_of(&["ok".to_owned()]));
        let sent = setup.send(first, "How do lifetimes work?").await;
        setup.finished(sent.answer.message.id).await;
        let second = setup.conversation().await;
        services
            .rename_conversation(&setup.user, second, "Borrow checker notes")
            .await
            .unwrap();
        let user = &setup.user;
        let found = |search: &'static str| async move {
            services
                .conversations(user, None, Some(search))
                .await
                .unwrap()
                .into_iter()
                .map(|entry| entry.conversation.title)
                .collect::<Vec<_>>()
        };
        assert_eq!(found("LIFETIMES").await, ["How do lifetimes work?"]);
        assert_eq!(found("borrow").await, ["Borrow checker notes"]);
        assert_eq!(found("100%").await, Vec::<String>::new());
        assert_eq!(found("").await.len(), 2);
        assert!(matches!(
            services.rename_conversation(&setup.user, second, " ").await,
            Err(services::Error::Invalid(_))
        ));

        // The async mode starts tasks, not answers: a message in it is refused; nothing is stored.
        services
            .set_conversation_mode(&setup.user, second, "async")
            .await
            .unwrap();
        let refused = services
            .send_message(&setup.user, second, "Do it", ContextInput::default())
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("background task"), "{refused}");
        assert!(
            services
                .conversation(&setup.user, second)
                .await
                .unwrap()
                .1
                .is_empty()
        );
        assert!(
            services
                .set_conversation_mode(&setup.user, second, "nope")
                .await
                .is_err()
        );

        // Own modes: create, edit, delete; names are unique and built-ins are kept.
        let mode = services
            .create_mode(
                &setup.user,
                ModeInput {
                    name: "haiku".into(),
                    system_prompt: "Answer in haiku.".into(),
                    ..ModeInput::default()
                },
            )
            .await
            .unwrap();
        assert!(matches!(
            services
                .create_mode(
                    &setup.user,
                    ModeInput {
                        name: "haiku".into(),
                        system_prompt: "Again.".into(),
                        ..ModeInput::default()
                    },
                )
                .await,
            Err(services::Error::Conflict(_))
        ));
        let id = mode.id.unwrap();
        let changed = services
            .update_mode(
                &setup.user,
                id,
                ModeInput {
                    name: "haiku".into(),
                    label: "Haiku".into(),
                    system_prompt: "Answer in one haiku.".into(),
                    ..ModeInput::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(changed.label, "Haiku");
        let names: Vec<String> = services
            .modes(&setup.user)
            .await
            .unwrap()
            .into_iter()
            .map(|mode| mode.name)
            .collect();
        assert_eq!(names.len(), 8);
        let (other, _) = sign_up(services, "eve@example.com").await;
        assert!(matches!(
            services.delete_mode(&other, id).await,
            Err(services::Error::NotFound)
        ));
        assert_eq!(services.modes(&other).await.unwrap().len(), 7);
        services.delete_mode(&setup.user, id).await.unwrap();

        // Someone else cannot read, rename or delete the conversation.
        assert!(matches!(
            services.conversation(&other, first).await,
            Err(services::Error::NotFound)
        ));
        assert!(services.delete_conversation(&other, first).await.is_err());
        services
            .delete_conversation(&setup.user, first)
            .await
            .unwrap();
        assert_eq!(found("").await.len(), 1);
    }
}

fn events_request(path: &str, cookie: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder()
        .method("GET")
        .uri(path)
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::COOKIE, cookie);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    let peer: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    request
}

/// `(id, data)` of each SSE event in a body.
fn sse_events(body: &str) -> Vec<(Option<String>, serde_json::Value)> {
    body.split("\n\n")
        .filter_map(|frame| {
            let mut id = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(value) = line.strip_prefix("id: ") {
                    id = Some(value.to_owned());
                }
                if let Some(value) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(value).unwrap());
                }
            }
            data.map(|data| (id, data))
        })
        .collect()
}

#[tokio::test]
async fn the_events_endpoint_resumes_for_the_owner_only() {
    let setup = setup(db::Backend::Sqlite).await;
    let router = support::router_for(setup.services.clone());
    let conversation = setup.conversation().await;
    let words = pieces(6);
    setup
        .local
        .push(stream_of(&words).gap(Duration::from_millis(30)));
    let sent = setup.send(conversation, "Stream it").await;
    let path = format!("/api/chat/answers/{}/events", sent.answer.message.id);

    // The whole answer, as our page's EventSource gets it.
    let reply = support::send(
        &router,
        events_request(&path, &setup.cookie, &[("sec-fetch-site", "same-origin")]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers.get(header::CONTENT_TYPE).unwrap(),
        "text/event-stream"
    );
    let events = sse_events(&reply.body);
    let ids: Vec<u64> = events
        .iter()
        .map(|(id, _)| id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    assert_eq!(events[0].1["type"], "answering");
    assert_eq!(events.last().unwrap().1["type"], "finished");
    assert_eq!(events.last().unwrap().1["status"], "complete");
    let text: String = events
        .iter()
        .filter(|(_, data)| data["type"] == "text")
        .map(|(_, data)| data["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, words.concat());

    // Finished: one `stored` event with the message as saved, whatever `after` says.
    let reply = support::send(
        &router,
        events_request(&format!("{path}?after=3"), &setup.cookie, &[]),
    )
    .await;
    let events = sse_events(&reply.body);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1["type"], "stored");
    assert_eq!(events[0].1["message"]["content"], words.concat());
    assert_eq!(events[0].1["message"]["status"], "complete");

    // Resuming a live answer from Last-Event-ID.
    setup
        .local
        .push(stream_of(&words).gap(Duration::from_millis(60)));
    let sent = setup.send(conversation, "Again").await;
    let path = format!("/api/chat/answers/{}/events", sent.answer.message.id);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let reply = support::send(
        &router,
        events_request(&path, &setup.cookie, &[("last-event-id", "2")]),
    )
    .await;
    let events = sse_events(&reply.body);
    assert_eq!(events[0].0.as_deref(), Some("3"));

    // Someone else: 404, as for an answer that does not exist. Another site: 403. No
    // session: 401.
    let (_, other_cookie) = sign_up(&setup.services, "eve@example.com").await;
    let reply = support::send(&router, events_request(&path, &other_cookie, &[])).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let missing = format!("/api/chat/answers/{}/events", MessageId::new());
    let reply = support::send(&router, events_request(&missing, &setup.cookie, &[])).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = support::send(
        &router,
        events_request(
            &path,
            &setup.cookie,
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.example"),
            ],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = support::send(&router, events_request(&path, "", &[])).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_reader_past_the_end_of_an_answer_gets_a_response_that_ends() {
    for backend in backends() {
        let setup = setup(backend).await;
        let router = support::router_for(setup.services.clone());
        let conversation = setup.conversation().await;
        let words = pieces(20);
        setup
            .local
            .push(stream_of(&words).gap(Duration::from_millis(100)));
        let sent = setup.send(conversation, "Slowly").await;
        let answer = sent.answer.message.id;
        let path = format!("/api/chat/answers/{answer}/events");
        let within = |request| {
            let router = router.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(5), support::send(&router, request))
                    .await
                    .expect("the response ends")
            }
        };
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Live, and a number it never gave out: nothing to wait for, whichever way it is asked.
        let reply = within(events_request(
            &format!("{path}?after=1000"),
            &setup.cookie,
            &[],
        ))
        .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
        let reply = within(events_request(
            &path,
            &setup.cookie,
            &[("last-event-id", "1000")],
        ))
        .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
        assert!(
            matches!(setup.follow(answer, 0).await, AnswerFeed::Live(_)),
            "the answer was still being generated"
        );
        // A number it gave out follows it to its end.
        let reply = tokio::time::timeout(
            Duration::from_secs(20),
            support::send(
                &router,
                events_request(&path, &setup.cookie, &[("last-event-id", "1")]),
            ),
        )
        .await
        .expect("the response ends with the answer");
        let events = sse_events(&reply.body);
        assert_eq!(events[0].0.as_deref(), Some("2"));
        assert_eq!(events.last().unwrap().1["type"], "finished");

        // Finished: the stored message, at once, however far past its end the number is.
        setup.finished(answer).await;
        for (query, headers) in [
            ("?after=1000", &[][..]),
            ("", &[("last-event-id", "1000")][..]),
        ] {
            let reply = within(events_request(
                &format!("{path}{query}"),
                &setup.cookie,
                headers,
            ))
            .await;
            assert_eq!(reply.status, StatusCode::OK);
            let events = sse_events(&reply.body);
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].1["type"], "stored");
            assert_eq!(events[0].1["message"]["content"], words.concat());
        }
    }
}
