#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Three real server processes on one throwaway Postgres behind HAProxy (round robin, no
//! stickiness, a new backend connection for every request), answering from a local upstream
//! that streams slowly in OpenAI's wire format.
//!
//! 30 chats are sent at once through the balancer and each answer is followed through it as a
//! browser's EventSource does. Mid-answer the test kills one instance with SIGKILL: every reader
//! whose connection dies connects again through the balancer with its `Last-Event-ID` and gets
//! each event once and in order; each answer the killed instance was writing ends interrupted,
//! with the text written so far, within the lease (3 s) and a margin; every other answer
//! completes, none of them interrupted by another instance.
//!
//! Needs HAProxy (`/usr/sbin/haproxy`, Debian's `haproxy`): without it the test is skipped with a
//! note, or fails when `CI=true`.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use db::ids::MessageId;
use db::tables::messages::MessageStatus;
use db::testing::{TestDatabase, backends};
use llm::testing::Upstream;
use services::ExposeSecret;
use services::secrets::MasterKey;
use support::processes::{Children, ServerSettings, free_port, log_tail, wait_for_status};
use support::{pieces, stream_of};

const HAPROXY: &str = "/usr/sbin/haproxy";
const INSTANCES: usize = 3;
const CHATS: usize = 30;
/// Pieces of every answer, and the pause between two: about 9 s an answer.
const PIECES: usize = 150;
const GAP: Duration = Duration::from_millis(60);
const LEASE: Duration = Duration::from_secs(3);
/// How long after the kill every answer of the killed instance must have ended: the lease,
/// a recovery round (every half lease) and slack for a loaded machine.
const RECOVERY_BOUND: Duration = Duration::from_secs(9);

fn haproxy_config(front: u16, backends: &[u16]) -> String {
    let mut config = String::from(
        "global\n    maxconn 2000\n\
         defaults\n    mode http\n    option http-server-close\n    timeout connect 1s\n\
         \x20   timeout client 60s\n    timeout server 60s\n    timeout http-request 10s\n    timeout check 3s\n\
         \x20   retries 3\n    option redispatch 1\n",
    );
    config.push_str(&format!(
        "frontend coder\n    bind 127.0.0.1:{front}\n    option forwardfor\n\
         \x20   default_backend instances\n\
         backend instances\n    balance roundrobin\n    option httpchk GET /readyz\n\
         \x20   http-response set-header X-Served-By %[srv_name]\n"
    ));
    for (index, port) in backends.iter().enumerate() {
        config.push_str(&format!(
            "    server i{index} 127.0.0.1:{port} check inter 500ms fall 2 rise 2\n"
        ));
    }
    config
}

/// What a reader got of one answer, through the balancer.
#[derive(Debug, Default)]
struct Followed {
    /// Each event's number and JSON, in the order received, over every connection.
    events: Vec<(u64, serde_json::Value)>,
    /// The instance that served each connection (HAProxy's `X-Served-By`).
    served_by: Vec<String>,
    /// When the `finished` (or `stored`) event came.
    finished_at: Option<Instant>,
    /// The answer as stored, for a reader that had seen events its writer never saved (it died
    /// right after giving them out from memory): a reconnection then gets the stored message.
    stored: Option<serde_json::Value>,
    /// Connections that ended before the answer did.
    broken: usize,
}

impl Followed {
    fn last(&self) -> u64 {
        self.events.last().map_or(0, |(number, _)| *number)
    }

    fn text(&self) -> String {
        self.events
            .iter()
            .filter(|(_, event)| event["type"] == "text")
            .map(|(_, event)| event["text"].as_str().unwrap_or_default())
            .collect()
    }

    fn finished(&self) -> Option<&serde_json::Value> {
        self.events
            .last()
            .map(|(_, event)| event)
            .filter(|event| event["type"] == "finished")
    }
}

/// Follows an answer's events through the balancer until its `finished` event, reconnecting
/// with `Last-Event-ID` (as EventSource does) whenever a connection fails or ends early.
async fn follow(
    client: reqwest::Client,
    base: String,
    cookie: String,
    answer: String,
    deadline: Instant,
) -> Followed {
    let mut followed = Followed::default();
    let url = format!("{base}/api/chat/answers/{answer}/events");
    while Instant::now() < deadline {
        let mut request = client.get(&url).header("cookie", &cookie);
        if followed.last() > 0 {
            request = request.header("last-event-id", followed.last().to_string());
        }
        let mut reply = match request.send().await {
            Ok(reply) if reply.status() == reqwest::StatusCode::OK => reply,
            Ok(reply) => {
                assert_ne!(
                    reply.status(),
                    reqwest::StatusCode::NO_CONTENT,
                    "{answer}: nothing more to come before its end ({followed:?})"
                );
                // The balancer had no instance at hand (503): try again.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        followed.served_by.push(
            reply
                .headers()
                .get("x-served-by")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("?")
                .to_owned(),
        );
        let mut buffer = String::new();
        loop {
            let chunk = match reply.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) | Err(_) => break,
            };
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = Some(value.trim().parse::<u64>().unwrap());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.strip_prefix(' ').unwrap_or(value));
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let event: serde_json::Value = serde_json::from_str(&data).unwrap();
                if id.is_none() && event["type"] == "stored" {
                    followed.stored = Some(event["message"].clone());
                    followed.finished_at = Some(Instant::now());
                    return followed;
                }
                let Some(id) = id else {
                    panic!("{answer}: an event without a number, {event} ({followed:?})");
                };
                let finished = event["type"] == "finished";
                followed.events.push((id, event));
                if finished {
                    followed.finished_at = Some(Instant::now());
                    return followed;
                }
            }
        }
        followed.broken += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{answer}: no end within the deadline ({followed:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_chats_through_a_balancer_survive_the_kill_of_an_instance() {
    if !Path::new(HAPROXY).exists() {
        if std::env::var("CI").is_ok_and(|value| value == "true") {
            panic!("{HAPROXY} is missing: install Debian's haproxy (scripts do)");
        }
        eprintln!(
            "\n\n*** SKIPPED load_balanced: {HAPROXY} is missing (apt-get install haproxy) ***\n\n"
        );
        return;
    }
    let Some(backend) = backends()
        .into_iter()
        .find(|backend| *backend == db::Backend::Postgres)
    else {
        eprintln!("NOTE: load_balanced runs on Postgres only: skipped");
        return;
    };
    tokio::time::timeout(Duration::from_secs(75), run(backend))
        .await
        .expect("the test ends within its bound");
}

async fn run(backend: db::Backend) {
    let database = TestDatabase::migrated(backend).await;
    let folders = tempfile::tempdir().unwrap();
    let upstream = Upstream::start().await.unwrap();
    let words = pieces(PIECES);
    upstream.always(stream_of(&words).gap(GAP));
    let key = MasterKey::generate(1).unwrap();
    let encoded_key = key.encode();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // The instances, one after the other (the first writes the master key's check).
    let mut children = Children::default();
    let (ports, logs) = ServerSettings {
        database_url: &database.url,
        folder: folders.path(),
        upstream: upstream.address(),
        lease: LEASE,
        master_key: encoded_key.expose_secret(),
    }
    .start(INSTANCES, &mut children, &client)
    .await;

    let front = free_port();
    let config = folders.path().join("haproxy.cfg");
    std::fs::write(&config, haproxy_config(front, &ports)).unwrap();
    let haproxy_log = folders.path().join("haproxy.log");
    children.push(
        Command::new(HAPROXY)
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&haproxy_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{front}");
    wait_for_status(
        &client,
        &format!("{base}/readyz"),
        std::slice::from_ref(&haproxy_log),
    )
    .await;
    // Every instance in rotation (two good checks each).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // One person (the first account: the top tier) with the local upstream and 30 chats, set up
    // with the instances' master key.
    let mut services = services::Services::new(database.database.clone(), key);
    services.ai = support::services_with_gateway(&database).ai;
    let (user, cookie) = support::sign_up_with(&services, "ada@example.com").await;
    support::add_local_provider(&services, &user, "local", &upstream).await;
    let mut conversations = Vec::new();
    for _ in 0..CHATS {
        conversations.push(
            services
                .create_conversation(&user, None, Some("chat"), Some("local/echo".into()))
                .await
                .unwrap()
                .id,
        );
    }

    // 30 messages at once through the balancer; the instance that took each writes its answer.
    let sends = conversations.iter().map(|conversation| {
        let (client, base, cookie) = (client.clone(), base.clone(), cookie.clone());
        let body =
            serde_json::json!({"conversation_id": conversation.to_string(), "text": "Count"});
        async move {
            let reply = client
                .post(format!("{base}/api/chat/send"))
                .header("cookie", &cookie)
                .header("origin", &base)
                .json(&body)
                .send()
                .await
                .unwrap();
            let served_by = reply.headers()["x-served-by"].to_str().unwrap().to_owned();
            let status = reply.status();
            let text = reply.text().await.unwrap();
            assert_eq!(status, reqwest::StatusCode::OK, "{text}");
            let sent: serde_json::Value = serde_json::from_str(&text).unwrap();
            (sent["answer"]["id"].as_str().unwrap().to_owned(), served_by)
        }
    });
    let answers: Vec<(String, String)> = futures::future::join_all(sends).await;
    let deadline = Instant::now() + Duration::from_secs(45);
    let readers: Vec<_> = answers
        .iter()
        .map(|(answer, _)| {
            tokio::spawn(follow(
                client.clone(),
                base.clone(),
                cookie.clone(),
                answer.clone(),
                deadline,
            ))
        })
        .collect();
    let mut writers = std::collections::BTreeMap::<&str, usize>::new();
    for (_, writer) in &answers {
        *writers.entry(writer.as_str()).or_default() += 1;
    }
    assert_eq!(
        writers.len(),
        INSTANCES,
        "round robin: every instance writes answers {writers:?}"
    );

    // Mid-answer (about 9 s each), instance i0 dies.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for (index, log) in logs.iter().enumerate() {
        assert!(
            children.get(index).try_wait().unwrap().is_none(),
            "instance {index} runs: {}",
            log_tail(log)
        );
    }
    children.kill(0);
    let killed_at = Instant::now();

    let mut results = Vec::new();
    for reader in readers {
        results.push(reader.await.unwrap());
    }
    let mut killed_answers = 0;
    let mut reconnected = 0;
    let mut slowest_recovery = Duration::ZERO;
    let mut ahead = 0;
    let mut elsewhere = 0;
    for ((answer, writer), followed) in answers.iter().zip(&results) {
        let context = format!("answer {answer} written by {writer}");
        let numbers: Vec<u64> = followed.events.iter().map(|(number, _)| *number).collect();
        assert_eq!(
            numbers,
            (1..=numbers.len() as u64).collect::<Vec<_>>(),
            "{context}: every event once, in order ({:?})",
            followed.served_by
        );
        let id: MessageId = answer.parse().unwrap();
        let (stored, _) = services
            .database
            .find_message(user.id, id)
            .await
            .unwrap()
            .unwrap();
        if followed.broken > 0 {
            reconnected += 1;
        }
        if followed.served_by.first() != Some(writer) {
            elsewhere += 1;
        }
        let finished = match (&followed.stored, followed.finished()) {
            (None, Some(finished)) => {
                assert_eq!(
                    stored.content,
                    followed.text(),
                    "{context}: the reader has the stored text"
                );
                finished["status"].as_str().unwrap().to_owned()
            }
            (Some(message), None) => {
                // Seen from the writer's memory, never written to its rows before it died.
                assert_eq!(
                    writer, "i0",
                    "{context}: only the killed instance loses events"
                );
                ahead += 1;
                assert_eq!(message["content"].as_str().unwrap(), stored.content);
                assert!(
                    followed.text().starts_with(&stored.content),
                    "{context}: the stored partial is what the reader had, up to the rows"
                );
                message["status"].as_str().unwrap().to_owned()
            }
            other => panic!("{context}: the events end with {other:?}"),
        };
        if writer == "i0" {
            killed_answers += 1;
            assert_eq!(finished, "interrupted", "{context}");
            assert_eq!(stored.status, MessageStatus::Interrupted, "{context}");
            assert!(
                !stored.content.is_empty() && stored.content.len() < words.concat().len(),
                "{context}: a partial, {} bytes",
                stored.content.len()
            );
            assert!(words.concat().starts_with(&stored.content), "{context}");
            let recovery = followed.finished_at.unwrap() - killed_at;
            slowest_recovery = slowest_recovery.max(recovery);
            assert!(
                recovery < RECOVERY_BOUND,
                "{context}: interrupted {recovery:?} after the kill"
            );
        } else {
            assert_eq!(finished, "complete", "{context}");
            assert_eq!(stored.status, MessageStatus::Complete, "{context}");
            assert_eq!(stored.content, words.concat(), "{context}");
        }
    }
    assert!(killed_answers > 0);
    assert!(
        reconnected > 0,
        "some readers were on the killed instance and reconnected"
    );
    eprintln!(
        "load_balanced: answers written per instance {writers:?}; {killed_answers} interrupted \
         (the slowest {slowest_recovery:?} after the kill), {reconnected} readers reconnected, \
         {ahead} of them ahead of the rows; {elsewhere} readers began on another instance than \
         the writer's"
    );
    drop(children);
}
