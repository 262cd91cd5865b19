//! Derived from the registered endpoints, so that a new server function is covered without anyone
//! remembering to add it: outside the explicit public list, every `/api/` endpoint answers 401 to
//! a caller who is not signed in, whatever the request holds; and the public list names only
//! endpoints that exist.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use db::testing::TestDatabase;
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn every_endpoint_outside_the_public_list_needs_a_session() {
    let database = TestDatabase::migrated(db::Backend::Sqlite).await;
    let router = support::test_router(&database);
    let endpoints: Vec<(String, axum::http::Method)> = server_fn::axum::server_fn_paths()
        .map(|(path, method)| (path.to_owned(), method))
        .collect();
    assert!(endpoints.len() >= 12, "{endpoints:?}");
    for public in app::api::PUBLIC_ENDPOINTS {
        assert!(
            endpoints.iter().any(|(path, _)| path == public),
            "{public} is not an endpoint"
        );
    }

    let mut checked = 0;
    for (path, method) in &endpoints {
        assert!(
            path.starts_with("/api/"),
            "{path}: every server function lives under /api/"
        );
        if app::api::PUBLIC_ENDPOINTS.contains(&path.as_str()) {
            continue;
        }
        for (body, cookie) in [
            ("", None),
            ("id=x&name=y", None),
            ("", Some("session=forged-token")),
        ] {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(header::HOST, "127.0.0.1:3000")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            if let Some(cookie) = cookie {
                request = request
                    .header(header::COOKIE, cookie)
                    .header(header::ORIGIN, "http://127.0.0.1:3000");
            }
            let response = router
                .clone()
                .oneshot(request.body(Body::from(body)).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {body:?} {cookie:?}"
            );
            assert_eq!(&bytes[..], br#""Unauthorized""#, "{path}");
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} private endpoints");
}

/// Endpoints that name no stored object: they act on the caller's own account or list the
/// caller's own things. Every other private endpoint takes an object id and is checked below.
const CALLER_SCOPED: &[&str] = &[
    "/api/auth/sign-out",
    "/api/account/profile",
    "/api/account/update-profile",
    "/api/account/change-password",
    "/api/account/delete",
    "/api/providers/list",
    "/api/providers/save",
    "/api/tokens/list",
    "/api/tokens/create",
    "/api/projects/list",
    "/api/projects/create",
    "/api/ai/models",
    "/api/ai/usage",
    "/api/chat/setup",
    "/api/chat/default-model",
];

/// Endpoints for administrators only: another user gets 403 whatever they send.
const ADMIN_ONLY: &[&str] = &[
    "/api/admin/users",
    "/api/admin/update-user",
    "/api/admin/audit",
    "/api/admin/sandbox",
];

/// For every registered endpoint that names an object, user B sending user A's ids (every id
/// field at once, so that a new endpoint is covered by whatever names it uses) gets 404, and
/// nothing of A's changes.
#[tokio::test]
async fn another_users_objects_are_not_found_through_any_endpoint() {
    use support::{form_value, json, post};
    for backend in db::testing::backends() {
        let database = TestDatabase::migrated(backend).await;
        let router = support::test_router(&database);
        let ada = support::sign_up(&router, "ada", "Ada")
            .await
            .session_cookie()
            .unwrap();
        let bob = support::sign_up(&router, "bob", "Bob")
            .await
            .session_cookie()
            .unwrap();
        let call = |cookie: String, path: &'static str, form: String| {
            let router = router.clone();
            async move { post(&router, path, &form, Some(&cookie), "127.0.0.1").await }
        };
        let project = json(
            &call(
                ada.clone(),
                "/api/projects/create",
                "name=Private&description=&repository_url=".into(),
            )
            .await,
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let file = json(
            &call(
                ada.clone(),
                "/api/files/create",
                format!("project_id={project}&path=src%2Fmain.rs&content=secret"),
            )
            .await,
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let revisions = json(
            &call(
                ada.clone(),
                "/api/files/revisions",
                format!("project_id={project}&file_id={file}"),
            )
            .await,
        );
        let revision = revisions[0]["id"].as_str().unwrap().to_owned();
        let token = json(
            &call(
                ada.clone(),
                "/api/tokens/create",
                "name=ci&days=30&scopes=read".into(),
            )
            .await,
        )["token"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let credential = json(
            &call(
                ada.clone(),
                "/api/providers/save",
                "provider=openai&label=&api_key=sk-ada-private-1234&base_url=".into(),
            )
            .await,
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let conversation = json(
            &call(
                ada.clone(),
                "/api/chat/new",
                format!("project_id={project}&mode=chat"),
            )
            .await,
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let json_call = |cookie: String, path: &str, body: serde_json::Value| {
            let router = router.clone();
            let path = path.to_owned();
            async move {
                let mut request = support::same_origin_request(
                    "POST",
                    &path,
                    &cookie,
                    body.to_string().into_bytes(),
                );
                request.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                support::send(&router, request).await
            }
        };
        let sent = json(
            &json_call(
                ada.clone(),
                "/api/chat/send",
                serde_json::json!({"conversation_id": conversation, "text": "secret question", "context": null}),
            )
            .await,
        );
        let question = sent["question"]["id"].as_str().unwrap().to_owned();
        let answer = sent["answer"]["id"].as_str().unwrap().to_owned();
        let mode = json(
            &json_call(
                ada.clone(),
                "/api/chat/modes/save",
                serde_json::json!({"id": null, "draft": {
                    "name": "private", "label": "", "description": "", "system_prompt": "secret prompt",
                    "models": "", "send_current_file": true, "send_selection": true,
                    "max_context_tokens": 1000, "output": "markdown"
                }}),
            )
            .await,
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let task = json(
            &json_call(
                ada.clone(),
                "/api/agent/start",
                serde_json::json!({"project_id": project, "instructions": "secret task",
                    "max_steps": null, "max_cost_micros": null}),
            )
            .await,
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Ada's task stops at once (she has no provider): it must have settled before the
        // snapshot too.
        let settled_by = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let shown =
                json(&call(ada.clone(), "/api/agent/task", format!("task_id={task}")).await);
            if shown["state"] != "running" {
                break;
            }
            assert!(
                std::time::Instant::now() < settled_by,
                "the task never settled: {shown}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // The answer fails at once (Ada has no provider): it must have settled before the
        // snapshot, or the snapshots differ by its status (a busy machine takes longer).
        let settled_by = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let opened =
                json(&call(ada.clone(), "/api/chat/open", format!("id={conversation}")).await);
            let streaming = opened["messages"].as_array().is_some_and(|messages| {
                messages
                    .iter()
                    .any(|message| message["status"] == "streaming")
            });
            if !streaming {
                break;
            }
            assert!(
                std::time::Instant::now() < settled_by,
                "the answer never settled: {opened}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let snapshot = |cookie: String| {
            let call = &call;
            let project = project.clone();
            let conversation = conversation.clone();
            let task = task.clone();
            async move {
                [
                    call(cookie.clone(), "/api/agent/task", format!("task_id={task}"))
                        .await
                        .body,
                    call(
                        cookie.clone(),
                        "/api/chat/open",
                        format!("id={conversation}"),
                    )
                    .await
                    .body,
                    call(cookie.clone(), "/api/chat/setup", String::new())
                        .await
                        .body,
                    call(
                        cookie.clone(),
                        "/api/files/tree",
                        format!("project_id={project}"),
                    )
                    .await
                    .body,
                    call(cookie.clone(), "/api/projects/list", String::new())
                        .await
                        .body,
                    call(cookie.clone(), "/api/tokens/list", String::new())
                        .await
                        .body,
                    call(cookie, "/api/providers/list", String::new())
                        .await
                        .body,
                ]
            }
        };
        let before = snapshot(ada.clone()).await;

        let endpoints: Vec<String> = server_fn::axum::server_fn_paths()
            .map(|(path, _)| path.to_owned())
            .chain([
                "/api/projects/import".to_owned(),
                format!("/api/projects/{project}/export.zip"),
            ])
            .collect();
        let mut checked = 0;
        for path in &endpoints {
            let path = path.as_str();
            if app::api::PUBLIC_ENDPOINTS.contains(&path) || CALLER_SCOPED.contains(&path) {
                continue;
            }
            let id = if path.starts_with("/api/tokens/") {
                token.as_str()
            } else if path.starts_with("/api/chat/modes/") {
                mode.as_str()
            } else if path.starts_with("/api/chat/") {
                conversation.as_str()
            } else if path.starts_with("/api/admin/") {
                // An admin endpoint's `id` is a user: A's.
                ""
            } else {
                credential.as_str()
            };
            let message = if path == "/api/chat/edit" {
                question.as_str()
            } else {
                answer.as_str()
            };
            let fields = [
                ("project_id", project.as_str()),
                ("conversation_id", conversation.as_str()),
                ("message_id", message),
                ("title", "Stolen"),
                ("mode", "chat"),
                ("model", "gpt-4o"),
                ("text", "overwritten"),
                ("search", ""),
                ("file_id", file.as_str()),
                ("revision_id", revision.as_str()),
                ("id", id),
                ("path", "src/main.rs"),
                ("from", "src"),
                ("to", "stolen"),
                ("content", "overwritten"),
                ("base_version", "1"),
                ("name", "Stolen"),
                ("description", ""),
                ("repository_url", ""),
                ("pattern", "secret"),
                ("regex", "false"),
                ("case_sensitive", "false"),
                ("role", "admin"),
                ("tier", "enterprise"),
                ("disabled", "true"),
                ("key", "symbols:src/main.rs"),
                ("choice", "pinned"),
                ("command_line", "cat /etc/passwd"),
                ("task_id", task.as_str()),
                ("instructions", "stolen"),
                ("comment", "stolen"),
            ];
            let form = fields
                .iter()
                .map(|(name, value)| format!("{name}={}", form_value(value)))
                .collect::<Vec<_>>()
                .join("&");
            let reply = if path.ends_with("/export.zip") {
                support::send(
                    &router,
                    support::same_origin_request("GET", path, &bob, Vec::new()),
                )
                .await
            } else if path == "/api/projects/import" {
                // Import names no object of anyone's: it creates B's own project.
                continue;
            } else if server::request_body::JSON_ENDPOINTS.contains(&path) {
                let mut body: serde_json::Map<String, serde_json::Value> = fields
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), serde_json::json!(value)))
                    .collect();
                body.insert("context".into(), serde_json::Value::Null);
                body.insert("more_budget".into(), serde_json::json!(true));
                body.insert("max_steps".into(), serde_json::Value::Null);
                body.insert("max_cost_micros".into(), serde_json::Value::Null);
                body.insert(
                    "files".into(),
                    serde_json::json!([{"path": "src/main.rs", "accepted": [false]}]),
                );
                body.insert("hunks".into(), serde_json::json!([["src/main.rs", 0]]));
                body.insert(
                    "draft".into(),
                    serde_json::json!({
                        "name": "stolen", "label": "", "description": "", "system_prompt": "x",
                        "models": "", "send_current_file": true, "send_selection": true,
                        "max_context_tokens": 1000, "output": "markdown"
                    }),
                );
                json_call(bob.clone(), path, serde_json::Value::Object(body)).await
            } else {
                post(&router, path, &form, Some(&bob), "127.0.0.1").await
            };
            let expected = if ADMIN_ONLY.contains(&path) {
                axum::http::StatusCode::FORBIDDEN
            } else {
                axum::http::StatusCode::NOT_FOUND
            };
            assert_eq!(reply.status, expected, "{path}: {}", reply.body);
            assert!(!reply.body.contains("secret"), "{path}: {}", reply.body);
            checked += 1;
        }
        assert!(checked >= 18, "only {checked} endpoints checked");
        for scoped in CALLER_SCOPED.iter().chain(ADMIN_ONLY) {
            assert!(
                endpoints.iter().any(|path| path == scoped),
                "{scoped} is not an endpoint"
            );
        }
        assert_eq!(snapshot(ada.clone()).await, before, "A's data changed");
        let opened = json(
            &call(
                ada.clone(),
                "/api/files/open",
                format!("project_id={project}&file_id={file}"),
            )
            .await,
        );
        assert_eq!(opened["content"], "secret");
        assert_eq!(opened["version"], 1);
        database.drop_postgres_database().await;
    }
}
