//! Bad input gets a clear 4xx, never a 5xx, and is never stored: bodies that are not JSON or not
//! text, bodies over the limit sent without a length, bad field values for every chat endpoint,
//! bytes that are not text once percent-decoded, and NUL characters, alike on SQLite and
//! Postgres. The body check (`server::request_body`) reads each endpoint's body in the encoding
//! the endpoint decodes, which the last test derives from the registered server functions.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use db::testing::{TestDatabase, backends};
use http_body_util::BodyExt;
use services::chat::ContextInput;
use support::{Reply, form_value, json, post, send};

const ADDRESS: &str = "127.0.0.1";

/// A signed-in person with a conversation holding one question and its answer.
struct Setup {
    /// Kept for as long as the test runs.
    _database: TestDatabase,
    router: axum::Router,
    cookie: String,
    conversation: String,
    question: String,
    answer: String,
}

async fn setup(backend: db::Backend) -> Setup {
    let database = TestDatabase::migrated(backend).await;
    let services = support::services_for(&database);
    let router = support::router_for(services.clone());
    let (user, cookie) = support::sign_up_with(&services, "ada@example.com").await;
    let conversation = services
        .create_conversation(&user, None, None, None)
        .await
        .unwrap();
    let sent = services
        .send_message(&user, conversation.id, "hello", ContextInput::default())
        .await
        .unwrap();
    Setup {
        _database: database,
        router,
        cookie,
        conversation: conversation.id.to_string(),
        question: sent.question.message.id.to_string(),
        answer: sent.answer.message.id.to_string(),
    }
}

/// A request from our own page with `content_type`, signed in with `cookie` when given.
fn request_with(
    path: &str,
    cookie: Option<&str>,
    content_type: &str,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut request = support::same_origin_request("POST", path, cookie.unwrap_or(""), Vec::new());
    if cookie.is_none() {
        request.headers_mut().remove(header::COOKIE);
    }
    request
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
    *request.body_mut() = body.into();
    request
}

async fn post_json(router: &axum::Router, path: &str, cookie: &str, body: &str) -> Reply {
    send(
        router,
        request_with(path, Some(cookie), "application/json", body.to_owned()),
    )
    .await
}

/// The message of an `AppError` answer of the given kind.
fn message(reply: &Reply, kind: &str) -> String {
    json(reply)[kind]
        .as_str()
        .unwrap_or_else(|| panic!("not a {kind} error: {} {}", reply.status, reply.body))
        .to_owned()
}

fn assert_bad_request(reply: &Reply, says: &str, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        reply.body
    );
    let text = message(reply, "BadRequest");
    assert!(text.contains(says), "{what}: {text}");
}

/// The conversation's title as stored.
async fn title_of(setup: &Setup) -> String {
    let reply = post(
        &setup.router,
        "/api/chat/open",
        &format!("id={}", setup.conversation),
        Some(&setup.cookie),
        ADDRESS,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    json(&reply)["conversation"]["title"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn bodies_that_cannot_be_read_are_bad_requests_never_bad_gateways() {
    for backend in backends() {
        let setup = setup(backend).await;
        let (router, cookie) = (&setup.router, setup.cookie.as_str());
        let conversation = &setup.conversation;

        for (body, says) in [
            (
                format!(r#"{{"conversation_id":"{conversation}","#),
                "not valid JSON",
            ),
            (
                format!(r#"{{"conversation_id":"{conversation}"}} x"#),
                "not valid JSON",
            ),
            ("conversation_id=x&text=hi".to_owned(), "not valid JSON"),
            (String::new(), "not valid JSON"),
            (
                r#"{"conversation_id":1,"text":"hi"}"#.to_owned(),
                "could not be read",
            ),
        ] {
            let reply = post_json(router, "/api/chat/send", cookie, &body).await;
            assert_bad_request(&reply, says, &format!("{backend:?} {body}"));
        }
        let reply = post_json(
            router,
            "/api/chat/modes/save",
            cookie,
            r#"{"draft":{"name":"x"}}"#,
        )
        .await;
        assert_bad_request(&reply, "could not be read", "a draft without its fields");

        // Invalid UTF-8, in a form and in a JSON string, signed in or not.
        let mut invalid_form = format!("id={conversation}&title=").into_bytes();
        invalid_form.extend_from_slice(b"\xFF\xFEtitle");
        let reply = send(
            router,
            request_with(
                "/api/chat/rename",
                Some(cookie),
                "application/x-www-form-urlencoded",
                invalid_form,
            ),
        )
        .await;
        assert_bad_request(&reply, "not UTF-8", "a form body that is not UTF-8");
        let mut invalid_json =
            format!(r#"{{"conversation_id":"{conversation}","text":""#).into_bytes();
        invalid_json.extend_from_slice(b"\xC3\x28\"}");
        let reply = send(
            router,
            request_with(
                "/api/chat/send",
                Some(cookie),
                "application/json",
                invalid_json,
            ),
        )
        .await;
        assert_bad_request(&reply, "not valid JSON", "a JSON body that is not UTF-8");
        let reply = send(
            router,
            request_with(
                "/api/auth/sign-in",
                None,
                "application/x-www-form-urlencoded",
                &b"email=a%40example.com&password=\xFF"[..],
            ),
        )
        .await;
        assert_bad_request(&reply, "not UTF-8", "a sign-in that is not UTF-8");

        assert_eq!(title_of(&setup).await, "hello");
    }
}

/// A body of `size` bytes in chunks of 64 KiB, with no `Content-Length`.
fn chunked(prefix: &str, size: usize) -> Body {
    let mut chunks = vec![Bytes::copy_from_slice(prefix.as_bytes())];
    let mut left = size.saturating_sub(prefix.len());
    while left > 0 {
        let length = left.min(64 * 1024);
        chunks.push(Bytes::from(vec![b'x'; length]));
        left -= length;
    }
    Body::from_stream(futures::stream::iter(
        chunks.into_iter().map(Ok::<_, std::io::Error>),
    ))
}

#[tokio::test]
async fn oversize_bodies_sent_without_a_length_are_413_with_the_limit() {
    for backend in backends() {
        let setup = setup(backend).await;
        let (router, cookie) = (&setup.router, setup.cookie.as_str());
        let size = 5 * 1024 * 1024;
        let form = "application/x-www-form-urlencoded";
        for (path, cookie, content_type, prefix) in [
            (
                "/api/chat/rename",
                Some(cookie),
                form,
                format!("id={}&title=", setup.conversation),
            ),
            (
                "/api/chat/send",
                Some(cookie),
                "application/json",
                format!(r#"{{"conversation_id":"{}","text":""#, setup.conversation),
            ),
            (
                "/api/files/save",
                Some(cookie),
                "text/plain",
                "content=".into(),
            ),
            (
                "/api/auth/sign-in",
                None,
                form,
                "email=a%40b.c&password=".into(),
            ),
        ] {
            let request = request_with(path, cookie, content_type, chunked(&prefix, size));
            assert!(request.headers().get(header::CONTENT_LENGTH).is_none());
            let reply = send(router, request).await;
            assert_eq!(
                reply.status,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{backend:?} {path}: {}",
                reply.body
            );
            let text = message(&reply, "TooLarge");
            assert!(
                text.contains("larger than the 4194304 bytes"),
                "{path}: {text}"
            );
        }
        // Declared too large: the same answer, before anything is read.
        let mut request = request_with("/api/chat/rename", Some(cookie), form, Body::empty());
        request
            .headers_mut()
            .insert(header::CONTENT_LENGTH, (size as u64).into());
        let reply = send(router, request).await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(message(&reply, "TooLarge").contains("larger than"));
        // Under the limit without a length: read as usual.
        let request = request_with(
            "/api/chat/rename",
            Some(cookie),
            form,
            chunked(&format!("id={}&title=Renamed", setup.conversation), 0),
        );
        let reply = send(router, request).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(title_of(&setup).await, "Renamed");
    }
}

/// Bad values for every chat endpoint, as a signed-in person: no answer is a 5xx (the refusals
/// are 4xx; some values, such as another message's id, are merely unusual and work).
#[tokio::test]
async fn chat_endpoints_never_answer_bad_field_values_with_5xx() {
    for backend in backends() {
        let setup = setup(backend).await;
        let (router, cookie) = (&setup.router, setup.cookie.as_str());
        let nobody = uuid::Uuid::now_v7().to_string();
        let long = "x".repeat(60_000);
        let percent = "%".repeat(30_000);
        let ids = [
            "not-a-uuid",
            "",
            nobody.as_str(),
            setup.conversation.as_str(),
            setup.question.as_str(),
            setup.answer.as_str(),
        ];
        let mut forms: Vec<(&str, String)> = vec![
            ("/api/chat/setup", String::new()),
            ("/api/chat/conversations", format!("search={long}")),
            (
                "/api/chat/conversations",
                format!("search={}", form_value(&percent)),
            ),
            ("/api/chat/conversations", "search=%25%5C_".into()),
        ];
        for id in ids {
            forms.push(("/api/chat/open", format!("id={id}")));
            forms.push(("/api/chat/delete", format!("id={id}x")));
            forms.push(("/api/chat/modes/delete", format!("id={id}")));
            forms.push(("/api/projects/context-index", format!("project_id={id}")));
            forms.push((
                "/api/chat/conversations",
                format!("project_id={id}&search="),
            ));
            for title in ["", "  ", long.as_str()] {
                forms.push(("/api/chat/rename", format!("id={id}&title={title}")));
            }
            for mode in ["", "nonexistent", "agent", long.as_str()] {
                forms.push(("/api/chat/mode", format!("id={id}&mode={mode}")));
                forms.push(("/api/chat/new", format!("project_id={id}&mode={mode}")));
                forms.push(("/api/chat/new", format!("mode={mode}&model={long}")));
            }
            for model in ["a b", long.as_str()] {
                forms.push(("/api/chat/model", format!("id={id}&model={model}")));
                forms.push(("/api/chat/default-model", format!("model={model}")));
            }
            for action in ["regenerate", "continue", "stop"] {
                forms.push((
                    match action {
                        "regenerate" => "/api/chat/regenerate",
                        "continue" => "/api/chat/continue",
                        _ => "/api/chat/stop",
                    },
                    format!("message_id={id}"),
                ));
            }
            for (key, choice) in [
                ("", ""),
                ("file:a", "weird"),
                ("file:a", "PINNED"),
                (long.as_str(), "dropped"),
                ("no-colon", "pinned"),
            ] {
                forms.push((
                    "/api/chat/context/choose",
                    format!("conversation_id={id}&key={key}&choice={choice}"),
                ));
            }
        }
        let mut failures = Vec::new();
        for (path, body) in &forms {
            let reply = post(router, path, body, Some(cookie), ADDRESS).await;
            if reply.status.is_server_error() {
                failures.push(format!("{path} {:.80} -> {}", body, reply.status));
            }
        }
        let mut jsons: Vec<(&str, String)> = Vec::new();
        for id in ids {
            for text in ["", "   ", long.as_str()] {
                jsons.push((
                    "/api/chat/send",
                    format!(r#"{{"conversation_id":"{id}","text":"{text}"}}"#),
                ));
                jsons.push((
                    "/api/chat/edit",
                    format!(r#"{{"message_id":"{id}","text":"{text}"}}"#),
                ));
            }
            jsons.push((
                "/api/chat/edit",
                format!(
                    r#"{{"message_id":"{id}","text":"{}"}}"#,
                    "y".repeat(300_000)
                ),
            ));
            for mode in ["", "nonexistent", "agent"] {
                jsons.push((
                    "/api/chat/context/preview",
                    format!(r#"{{"conversation_id":"{id}","mode":"{mode}","text":"q"}}"#),
                ));
                jsons.push((
                    "/api/chat/context/preview",
                    format!(r#"{{"project_id":"{id}","mode":"{mode}","text":"q"}}"#),
                ));
            }
            jsons.push((
                "/api/chat/send",
                format!(
                    r#"{{"conversation_id":"{id}","text":"q","context":{{"path":"{long}","content":"{long}{long}{long}{long}{long}","selection_start_line":0,"selection_end_line":4294967295,"selection":"z"}}}}"#
                ),
            ));
            for (name, output, tokens, models) in [
                ("", "", 0_u64, ""),
                ("my mode", "weird", 4_294_967_295, "a b"),
                ("chat", "text", 1000, "x"),
                ("fine", "text", 1000, long.as_str()),
                (long.as_str(), "text", 5, "m"),
            ] {
                let draft = format!(
                    r#"{{"name":"{name}","label":"{name}","description":"","system_prompt":"","models":"{models}","send_current_file":true,"send_selection":true,"max_context_tokens":{tokens},"output":"{output}"}}"#
                );
                jsons.push((
                    "/api/chat/modes/save",
                    format!(r#"{{"id":"{id}","draft":{draft}}}"#),
                ));
                jsons.push(("/api/chat/modes/save", format!(r#"{{"draft":{draft}}}"#)));
            }
        }
        for (path, body) in &jsons {
            let reply = post_json(router, path, cookie, body).await;
            if reply.status.is_server_error() {
                failures.push(format!("{path} {:.100} -> {}", body, reply.status));
            }
        }
        assert!(failures.is_empty(), "{backend:?}:\n{}", failures.join("\n"));

        // The two that were 500s, and what they say now.
        let reply = post(
            router,
            "/api/chat/context/choose",
            &format!(
                "conversation_id={}&key=file:a&choice=weird",
                setup.conversation
            ),
            Some(cookie),
            ADDRESS,
        )
        .await;
        assert_bad_request(&reply, "pinned, dropped or neither", "an unknown choice");
        let reply = post(
            router,
            "/api/chat/conversations",
            &format!("search={long}"),
            Some(cookie),
            ADDRESS,
        )
        .await;
        assert_bad_request(&reply, "500 characters at most", "a search too long");
        let reply = post(
            router,
            "/api/projects/context-index",
            "project_id=",
            Some(cookie),
            ADDRESS,
        )
        .await;
        assert_bad_request(&reply, "Which project?", "no project");
        // A new conversation's model is checked as a model name (it was stored whatever it was).
        let reply = post(
            router,
            "/api/chat/new",
            &format!("mode=chat&model={}", "m".repeat(60_000)),
            Some(cookie),
            ADDRESS,
        )
        .await;
        assert_bad_request(&reply, "is not a model name", "a model name too long");
        // A search of the longest length still searches.
        let reply = post(
            router,
            "/api/chat/conversations",
            &format!("search={}", form_value(&"%".repeat(500))),
            Some(cookie),
            ADDRESS,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
}

#[tokio::test]
async fn percent_encoded_bytes_that_are_not_text_are_refused_not_replaced() {
    for backend in backends() {
        let setup = setup(backend).await;
        let (router, cookie) = (&setup.router, setup.cookie.as_str());
        for title in ["a%FFb", "%C3", "%ED%A0%80", "%F0%9F%A6"] {
            let reply = post(
                router,
                "/api/chat/rename",
                &format!("id={}&title={title}", setup.conversation),
                Some(cookie),
                ADDRESS,
            )
            .await;
            assert_bad_request(&reply, "\"title\" is not UTF-8 text", title);
        }
        // In a field's name, and with a content type that does not say it is a form (server
        // functions decode the form anyway).
        let reply = post(
            router,
            "/api/chat/rename",
            &format!("id={}&title=x&%FF=1", setup.conversation),
            Some(cookie),
            ADDRESS,
        )
        .await;
        assert_bad_request(&reply, "not UTF-8 text", "a name");
        let reply = send(
            router,
            request_with(
                "/api/chat/rename",
                Some(cookie),
                "text/plain",
                format!("id={}&title=a%FFb", setup.conversation),
            ),
        )
        .await;
        assert_bad_request(&reply, "not UTF-8 text", "a form labelled text");
        assert_eq!(title_of(&setup).await, "hello");

        // Text percent-encoded as UTF-8 passes, whatever its script.
        let reply = post(
            router,
            "/api/chat/rename",
            &format!(
                "id={}&title={}",
                setup.conversation,
                form_value("naïve 日本 🦀 %FF")
            ),
            Some(cookie),
            ADDRESS,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(title_of(&setup).await, "naïve 日本 🦀 %FF");
    }
}

#[tokio::test]
async fn nul_characters_are_refused_alike_on_both_backends() {
    for backend in backends() {
        let setup = setup(backend).await;
        let (router, cookie) = (&setup.router, setup.cookie.as_str());
        let conversation = &setup.conversation;
        for (path, body) in [
            ("/api/chat/rename", format!("id={conversation}&title=a%00b")),
            ("/api/chat/new", "mode=chat&model=%00".to_owned()),
            (
                "/api/projects/create",
                "name=Tool%00&description=&repository_url=".to_owned(),
            ),
            (
                "/api/account/update-profile",
                "name=A%00da&avatar_url=".to_owned(),
            ),
            ("/api/chat/rename", format!("id={conversation}&title=a\0b")),
            (
                "/api/chat/rename",
                format!("id={conversation}&ti%00tle=x&title=y"),
            ),
        ] {
            let reply = post(router, path, &body, Some(cookie), ADDRESS).await;
            assert_bad_request(&reply, "NUL", &format!("{backend:?} {path} {body}"));
        }
        for (path, body) in [
            (
                "/api/chat/send",
                format!(r#"{{"conversation_id":"{conversation}","text":"a\u0000b"}}"#),
            ),
            (
                "/api/chat/edit",
                format!(r#"{{"message_id":"{}","text":"\u0000"}}"#, setup.question),
            ),
            (
                "/api/chat/modes/save",
                r#"{"draft":{"name":"nul\u0000","label":"x","description":"","system_prompt":"","models":"","send_current_file":true,"send_selection":true,"max_context_tokens":1000,"output":"text"}}"#.to_owned(),
            ),
            (
                "/api/chat/context/preview",
                r#"{"mode":"chat","text":"q","context":{"path":"a.rs","content":"a\u0000","language":null,"selection_start_line":null,"selection_end_line":null,"selection":null}}"#.to_owned(),
            ),
        ] {
            let reply = post_json(router, path, cookie, &body).await;
            assert_bad_request(&reply, "NUL", &format!("{backend:?} {path}"));
        }
        // JSON sent as a form, and a form sent as JSON: each is read the way its endpoint reads
        // it, so neither slips through.
        let reply = send(
            router,
            request_with(
                "/api/chat/send",
                Some(cookie),
                "application/x-www-form-urlencoded",
                format!(r#"{{"conversation_id":"{conversation}","text":"a\u0000b"}}"#),
            ),
        )
        .await;
        assert_bad_request(&reply, "NUL", "JSON labelled a form");
        let reply = send(
            router,
            request_with(
                "/api/chat/rename",
                Some(cookie),
                "application/json",
                format!(r#"{{"x":"&id={conversation}&title=a%00b&"}}"#),
            ),
        )
        .await;
        assert_bad_request(&reply, "NUL", "a form labelled JSON");

        // Nothing was stored; the same texts spelled out (`%00`, `\u0000` as characters) are
        // ordinary text.
        assert_eq!(title_of(&setup).await, "hello");
        let reply = post_json(
            router,
            "/api/chat/send",
            cookie,
            &format!(r#"{{"conversation_id":"{conversation}","text":"What are %00 and %FF and \\u0000?"}}"#),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(
            json(&reply)["question"]["content"],
            r"What are %00 and %FF and \u0000?"
        );
        let reply = post(
            router,
            "/api/chat/rename",
            &format!("id={conversation}&title={}", form_value("100%00 sure")),
            Some(cookie),
            ADDRESS,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(title_of(&setup).await, "100%00 sure");
    }
}

/// Bidirectional controls in a file or folder name are refused with the reason, through every
/// way a path arrives.
#[tokio::test]
async fn bidirectional_controls_in_file_and_folder_names_are_refused() {
    for backend in backends() {
        let setup = setup(backend).await;
        let (router, cookie) = (&setup.router, setup.cookie.as_str());
        let reply = post(
            router,
            "/api/projects/create",
            "name=Tool&description=&repository_url=",
            Some(cookie),
            ADDRESS,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let project = json(&reply)["id"].as_str().unwrap().to_owned();
        let reply = post(
            router,
            "/api/files/create",
            &format!("project_id={project}&path=src%2Fmain.rs&content=fn+main%28%29+%7B%7D"),
            Some(cookie),
            ADDRESS,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        for name in [
            "invoice\u{202E}fdp.exe",
            "src/\u{2066}lib.rs",
            "a\u{200F}b.txt",
        ] {
            let path = form_value(name);
            for (endpoint, body) in [
                (
                    "/api/files/create",
                    format!("project_id={project}&path={path}&content=x"),
                ),
                (
                    "/api/files/create-folder",
                    format!("project_id={project}&path={path}"),
                ),
                (
                    "/api/files/move",
                    format!("project_id={project}&from=src%2Fmain.rs&to={path}"),
                ),
            ] {
                let reply = post(router, endpoint, &body, Some(cookie), ADDRESS).await;
                assert_bad_request(
                    &reply,
                    "bidirectional",
                    &format!("{backend:?} {endpoint} {name:?}"),
                );
                assert!(
                    !reply.body.contains(['\u{202E}', '\u{2066}', '\u{200F}']),
                    "{}",
                    reply.body
                );
            }
        }
        let reply = post(
            router,
            "/api/files/tree",
            &format!("project_id={project}"),
            Some(cookie),
            ADDRESS,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let tree = json(&reply);
        assert_eq!(tree["files"].as_array().unwrap().len(), 1, "{tree}");
        assert_eq!(tree["files"][0]["path"], "src/main.rs");
        assert_eq!(tree["folders"], serde_json::json!(["src"]));
    }
}

/// `request_body::JSON_ENDPOINTS` are exactly the server functions that decode JSON: each
/// registered server function is given a body that is a form but not JSON, directly (no
/// session, no services: nothing runs past decoding), and says how it failed.
#[tokio::test]
async fn the_json_endpoints_listed_are_those_that_decode_json() {
    let mut decoding_json = Vec::new();
    for (path, method) in server_fn::axum::server_fn_paths() {
        let mut service =
            server_fn::axum::get_server_fn_service(path, method.clone()).expect("registered");
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("{"))
            .unwrap();
        let response = service.run(request).await;
        let body = response.into_body().collect().await.unwrap().to_bytes();
        if String::from_utf8_lossy(&body).contains("EOF while parsing") {
            decoding_json.push(path);
        }
    }
    decoding_json.sort_unstable();
    let mut listed = server::request_body::JSON_ENDPOINTS.to_vec();
    listed.sort_unstable();
    assert_eq!(decoding_json, listed);
}
