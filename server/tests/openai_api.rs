//! The OpenAI-compatible endpoint (`/v1/chat/completions`, `/v1/models`) over a real socket,
//! against local upstreams speaking each provider's wire format: the official `openai` Python
//! client as an outside tool, usage and cost recorded, fallback, heartbeat, tier limits, keys
//! marked invalid, tokens required.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use db::ids::ProviderCredentialId;
use db::sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use db::tables::{api_usage, provider_credentials};
use db::testing::{TestDatabase, backends};
use llm::ProviderKind;
use llm::testing::{End, Reply, Upstream, anthropic, gemini, openai};
use services::access_tokens::TokenScopes;
use services::providers::SaveCredential;
use services::{AuthenticatedUser, RequestMeta, SecretString, Services};

struct Setup {
    database: TestDatabase,
    services: Services,
    user: AuthenticatedUser,
    token: String,
    base_url: String,
    local: Upstream,
    local_credential: ProviderCredentialId,
    _server: tokio::task::JoinHandle<()>,
}

fn services_with_gateway(database: &TestDatabase) -> Services {
    let mut services = support::services_for(database);
    let mut ai = services::ai::Ai::new(
        llm::testing::loopback_policy(),
        llm::Timeouts {
            connect: Duration::from_secs(2),
            first_byte: Duration::from_secs(5),
            between_chunks: Duration::from_secs(5),
        },
        llm::RetryPolicy {
            max_retries: 1,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        },
    );
    ai.heartbeat = Duration::from_millis(150);
    services.ai = ai;
    services
}

async fn setup(backend: db::Backend, services: Option<Services>) -> Setup {
    let database = TestDatabase::migrated(backend).await;
    let services = services.unwrap_or_else(|| services_with_gateway(&database));
    let meta = RequestMeta::default();
    let (user, _) = services
        .sign_up(
            services::accounts::SignUp {
                email: "ada@example.com".into(),
                name: "Ada".into(),
                password: SecretString::from("correct horse battery staple".to_owned()),
            },
            &meta,
        )
        .await
        .unwrap();
    let (_, token) = services
        .create_access_token(&user, "cli", 30, TokenScopes::ALL, &meta)
        .await
        .unwrap();
    let local = Upstream::start().await.unwrap();
    let credential = services
        .save_credential(
            &user,
            SaveCredential {
                provider: db::tables::provider_credentials::ProviderKind::OpenAiCompatible,
                label: "local".into(),
                api_key: Some(SecretString::from("sk-local-test-key".to_owned())),
                base_url: Some(local.base_url(ProviderKind::OpenAiCompatible)),
            },
            &meta,
        )
        .await
        .unwrap();
    let router = support::router_for(services.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Setup {
        database,
        services,
        user,
        token: secrecy_text(&token),
        base_url: format!("http://{address}/v1"),
        local,
        local_credential: credential.id,
        _server: server,
    }
}

fn secrecy_text(secret: &SecretString) -> String {
    use services::ExposeSecret;
    secret.expose_secret().to_owned()
}

/// Starts a local upstream for a cloud provider and saves a key whose stored base URL points at
/// it (the gateway trusts the stored row, so this is how a test reaches "Anthropic").
async fn cloud_provider(setup: &Setup, llm_kind: ProviderKind) -> Upstream {
    let kind = match llm_kind {
        ProviderKind::Anthropic => provider_credentials::ProviderKind::Anthropic,
        ProviderKind::Gemini => provider_credentials::ProviderKind::Gemini,
        other => panic!("{other:?} is not a cloud provider these tests use"),
    };
    let upstream = Upstream::start().await.unwrap();
    let saved = setup
        .services
        .save_credential(
            &setup.user,
            SaveCredential {
                provider: kind,
                label: "default".into(),
                api_key: Some(SecretString::from("sk-cloud-test-key-1234".to_owned())),
                base_url: None,
            },
            &RequestMeta::default(),
        )
        .await
        .unwrap();
    let row = provider_credentials::Entity::find_by_id(saved.id)
        .one(setup.database.database.connection())
        .await
        .unwrap()
        .unwrap();
    let mut active: provider_credentials::ActiveModel = row.into();
    active.base_url = Set(Some(upstream.base_url(llm_kind)));
    active
        .update(setup.database.database.connection())
        .await
        .unwrap();
    upstream
}

async fn post_json(setup: &Setup, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", setup.base_url))
        .bearer_auth(&setup.token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn usage_rows(setup: &Setup) -> Vec<api_usage::Model> {
    // Usage is written in the background: wait until what was queued is in the database.
    setup.services.flush_usage().await;
    api_usage::Entity::find()
        .filter(api_usage::Column::UserId.eq(setup.user.id))
        .all(setup.database.database.connection())
        .await
        .unwrap()
}

fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("ASYNC_CODER_PYTHON") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").expect("HOME");
    let path = PathBuf::from(home).join(".cache/async-coder/venv/bin/python");
    assert!(
        path.exists(),
        "the official openai Python client is needed: run scripts/test (it creates {}), or set ASYNC_CODER_PYTHON",
        path.display()
    );
    path
}

#[tokio::test]
async fn the_official_openai_python_client_works_against_the_endpoint() {
    let setup = setup(db::Backend::Sqlite, None).await;
    let local = &setup.local;
    local.push(openai::models(&["qwen2.5-coder", "llama3.2"]));
    local.push(openai::completion("Paris.", 12, 3));
    local.push(Reply::sse(openai::text_stream(
        &["Hel", "lo", " world"],
        10,
        3,
    )));
    local.push(Reply::sse(openai::tool_call_stream(
        "call_weather",
        "get_weather",
        &["{\"city\"", ": \"Paris\"}"],
    )));
    local.push(Reply::json(200, serde_json::json!({
        "id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": "qwen2.5-coder",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_oslo", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39}}).to_string()));
    local.push(openai::completion("It is 3 degrees in Oslo.", 50, 8));
    local.push(
        openai::error(
            429,
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached",
        )
        .header("retry-after", "7"),
    );
    local.push(openai::error(
        404,
        "invalid_request_error",
        Some("model_not_found"),
        "The model `no-such-model` does not exist",
    ));
    let mut broken = openai::text_stream(&["Partial"], 5, 1);
    broken.truncate(2);
    broken.push(openai::error_frame("CUDA out of memory"));
    local.push(Reply::sse(broken));
    local.push(openai::error(
        401,
        "invalid_request_error",
        Some("invalid_api_key"),
        "Incorrect API key provided",
    ));

    let (base_url, token) = (setup.base_url.clone(), setup.token.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/clients/openai_client.py"
            ))
            .env("ASYNC_CODER_BASE_URL", base_url)
            .env("ASYNC_CODER_TOKEN", token)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        output.status.success(),
        "the Python client failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // What reached the upstream: the stored key, OpenAI's paths, the tool's result sent back.
    let received = local.received();
    assert_eq!(received[0].uri, "/v1/models");
    assert!(
        received
            .iter()
            .all(|request| request.header("authorization") == Some("Bearer sk-local-test-key"))
    );
    assert!(
        received[1..]
            .iter()
            .all(|request| request.uri == "/v1/chat/completions")
    );
    assert_eq!(received[2].json()["stream_options"]["include_usage"], true);
    assert_eq!(
        received[3].json()["tools"][0]["function"]["name"],
        "get_weather"
    );
    let sent_back = received[5].json();
    assert_eq!(sent_back["messages"][2]["role"], "tool");
    assert_eq!(sent_back["messages"][2]["tool_call_id"], "call_oslo");

    // Every call is recorded, failures too; the refused key is marked invalid.
    let rows = usage_rows(&setup).await;
    assert_eq!(rows.len(), 9, "{rows:#?}");
    let ok: Vec<_> = rows.iter().filter(|row| row.outcome == "ok").collect();
    assert_eq!(ok.len(), 5);
    assert!(
        ok.iter()
            .any(|row| row.input_tokens == 12 && row.output_tokens == 3)
    );
    assert!(rows.iter().all(|row| row.provider == "openai_compatible"
        && row.cost_micros == 0
        && row.mode == "chat"));
    let mut kinds: Vec<_> = rows
        .iter()
        .filter_map(|row| row.error_kind.clone())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["auth", "model_not_found", "provider_down", "rate_limited"]
    );
    let credential = provider_credentials::Entity::find_by_id(setup.local_credential)
        .one(setup.database.database.connection())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        credential.status,
        provider_credentials::CredentialStatus::Invalid
    );

    // The settings page's usage report counts the same calls.
    let report = setup.services.usage_report(&setup.user, 20).await.unwrap();
    assert_eq!((report.today.requests, report.this_month.requests), (9, 9));
    let tokens: i64 = rows
        .iter()
        .map(|row| row.input_tokens + row.output_tokens)
        .sum();
    assert_eq!(report.today.tokens, u64::try_from(tokens).unwrap());
    assert_eq!(report.recent.len(), 9);
}

/// Gemini 3 refuses a conversation whose function calls lost their thought signatures: through
/// OpenAI's format the signature travels in the tool call's id, which clients send back.
#[tokio::test]
async fn gemini_thought_signatures_survive_the_round_trip_through_tool_call_ids() {
    let setup = setup(db::Backend::Sqlite, None).await;
    let cloud = cloud_provider(&setup, ProviderKind::Gemini).await;
    let tools = serde_json::json!([{"type": "function", "function": {"name": "read_file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}]);

    // Streamed: the id of the call carries its signature.
    cloud.push(Reply::sse(gemini::function_call_stream(
        "The user wants a.rs.",
        "read_file",
        &serde_json::json!({"path": "a.rs"}),
    )));
    let response = post_json(
        &setup,
        serde_json::json!({"model": "gemini-2.5-flash", "stream": true, "tools": tools,
            "messages": [{"role": "user", "content": "what is in a.rs?"}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let ids: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["tool_calls"][0]["id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        ids,
        vec![format!(
            "call_0__thought__{}",
            gemini::FUNCTION_CALL_SIGNATURE
        )],
        "{text}"
    );

    // Not streamed: the same id.
    cloud.push(Reply::json(
        200,
        serde_json::json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "read_file", "args": {"path": "a.rs"}},
             "thoughtSignature": gemini::FUNCTION_CALL_SIGNATURE}]},
            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 52, "candidatesTokenCount": 5, "totalTokenCount": 57}})
        .to_string(),
    ));
    let response = post_json(
        &setup,
        serde_json::json!({"model": "gemini-2.5-flash", "tools": tools,
            "messages": [{"role": "user", "content": "what is in a.rs?"}]}),
    )
    .await;
    let body: serde_json::Value = response.json().await.unwrap();
    let call = body["choices"][0]["message"]["tool_calls"][0].clone();
    assert_eq!(call["id"], ids[0]);

    // The client sends the call back with the tool's result: Gemini gets the signature beside
    // the call, and the result under the call's name.
    cloud.push(gemini::answer("It holds main.", 70, 4));
    let response = post_json(
        &setup,
        serde_json::json!({"model": "gemini-2.5-flash", "tools": tools, "messages": [
            {"role": "user", "content": "what is in a.rs?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": ids[0], "content": "fn main() {}"}]}),
    )
    .await;
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "It holds main.");
    let sent = cloud.received()[2].json();
    let model_turn = &sent["contents"][1];
    assert_eq!(model_turn["role"], "model");
    assert_eq!(model_turn["parts"][0]["functionCall"]["name"], "read_file");
    assert_eq!(
        model_turn["parts"][0]["thoughtSignature"],
        gemini::FUNCTION_CALL_SIGNATURE
    );
    let response_part = &sent["contents"][2]["parts"][0]["functionResponse"];
    assert_eq!(response_part["name"], "read_file");
}

#[tokio::test]
async fn usage_and_cost_are_recorded_and_fallback_is_reported() {
    for backend in backends() {
        let setup = setup(backend, None).await;
        let cloud = cloud_provider(&setup, ProviderKind::Anthropic).await;

        // Anthropic, priced from the catalog: 1,000 input at $1/M and 50 output at $5/M.
        cloud.push(anthropic::message("Hi there", 1_000, 50));
        let response = post_json(
            &setup,
            serde_json::json!({
                "model": "claude-haiku-4-5",
                "messages": [{"role": "user", "content": "hello"}],
            }),
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-async-coder-provider"], "anthropic");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "Hi there");
        assert_eq!(body["usage"]["prompt_tokens"], 1_000);
        let received = cloud.received();
        assert_eq!(received[0].uri, "/v1/messages");
        assert_eq!(
            received[0].header("x-api-key"),
            Some("sk-cloud-test-key-1234")
        );
        assert_eq!(received[0].header("anthropic-version"), Some("2023-06-01"));
        assert!(received[0].header("authorization").is_none());

        // Anthropic overloaded (retried once), then the local server answers: the answer says so.
        cloud.push(anthropic::error(529, "overloaded_error", "Overloaded"));
        cloud.push(anthropic::error(529, "overloaded_error", "Overloaded"));
        setup
            .local
            .push(Reply::sse(openai::text_stream(&["from ", "local"], 7, 2)));
        let response = post_json(
            &setup,
            serde_json::json!({
                "model": "claude-haiku-4-5",
                "fallbacks": ["local/qwen2.5-coder"],
                "stream": true,
                "messages": [{"role": "user", "content": "hello"}],
            }),
        )
        .await;
        assert_eq!(response.status(), 200);
        let fallback = response.headers()["x-async-coder-fallback"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            fallback.contains("anthropic") && fallback.contains("provider_down"),
            "{fallback}"
        );
        let text = response.text().await.unwrap();
        assert!(
            text.contains("\"from \"")
                && text.contains("\"local\"")
                && text.ends_with("data: [DONE]\n\n"),
            "{text}"
        );
        assert_eq!(cloud.received().len(), 3);

        let rows = usage_rows(&setup).await;
        let anthropic_row = rows
            .iter()
            .find(|row| row.provider == "anthropic" && row.outcome == "ok")
            .unwrap();
        assert_eq!(
            (anthropic_row.input_tokens, anthropic_row.output_tokens),
            (1_000, 50)
        );
        assert_eq!(anthropic_row.cost_micros, 1_250);
        assert_eq!(anthropic_row.model, "claude-haiku-4-5");
        let local_row = rows
            .iter()
            .find(|row| row.provider == "openai_compatible")
            .unwrap();
        assert_eq!(
            (
                local_row.input_tokens,
                local_row.output_tokens,
                local_row.outcome.as_str()
            ),
            (7, 2, "ok")
        );
        setup.database.drop_postgres_database().await;
    }
}

#[tokio::test]
async fn a_slow_first_token_gets_heartbeats_and_a_cut_stream_is_recorded() {
    let setup = setup(db::Backend::Sqlite, None).await;
    setup.local.push(
        Reply::sse(openai::text_stream(&["late"], 4, 1))
            .first_byte_delay(Duration::from_millis(700)),
    );
    let response = post_json(&setup, serde_json::json!({
        "model": "qwen2.5-coder", "stream": true, "messages": [{"role": "user", "content": "hi"}],
    }))
    .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.starts_with(": keep-alive\n\n"), "{text}");
    assert!(
        text.contains("\"late\"") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );

    // A stream cut before its end: the partial text reached the client, then an error event.
    setup
        .local
        .push(Reply::sse(openai::text_stream(&["Hel", "lo"], 4, 1)).cut_after(3, End::Abort));
    let response = post_json(&setup, serde_json::json!({
        "model": "qwen2.5-coder", "stream": true, "messages": [{"role": "user", "content": "hi"}],
    }))
    .await;
    let text = response.text().await.unwrap();
    assert!(
        text.contains("\"Hel\"") && text.contains("\"lo\""),
        "{text}"
    );
    assert!(
        text.contains("\"code\":\"incomplete\"") && !text.contains("[DONE]"),
        "{text}"
    );
    let rows = usage_rows(&setup).await;
    assert!(
        rows.iter()
            .any(|row| row.outcome == "incomplete"
                && row.error_kind.as_deref() == Some("incomplete")),
        "{rows:#?}"
    );
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_stops_the_call_and_its_usage_is_recorded() {
    let setup = setup(db::Backend::Sqlite, None).await;
    let cloud = cloud_provider(&setup, ProviderKind::Anthropic).await;
    // Anthropic reports the input tokens at the start; the rest would take seconds.
    cloud.push(
        Reply::sse(anthropic::text_stream(
            &["one ", "two ", "three ", "four ", "five ", "six"],
            1_200,
            0,
            30,
        ))
        .gap(Duration::from_millis(400)),
    );
    let mut response = post_json(
        &setup,
        serde_json::json!({
            "model": "claude-haiku-4-5", "stream": true,
            "messages": [{"role": "user", "content": "count"}],
        }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut received = String::new();
    while !received.contains("\"one \"") {
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("the stream ended early");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response);

    // The gateway notices at its next write, stops reading the provider, and records the call.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let row = loop {
        let rows = usage_rows(&setup).await;
        if let Some(row) = rows.into_iter().find(|row| row.outcome == "cancelled") {
            break row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no cancelled call was recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row.provider, "anthropic");
    assert_eq!(row.model, "claude-haiku-4-5");
    assert_eq!(row.input_tokens, 1_200);
    assert!(row.cost_micros > 0, "{row:?}");
    assert_eq!(
        usage_rows(&setup).await.len(),
        1,
        "the call is recorded once"
    );
}

#[tokio::test]
async fn a_client_that_leaves_a_whole_answer_early_still_gets_the_call_recorded() {
    let setup = setup(db::Backend::Sqlite, None).await;
    let cloud = cloud_provider(&setup, ProviderKind::Anthropic).await;
    cloud.push(
        anthropic::message("late but whole", 900, 40).first_byte_delay(Duration::from_millis(600)),
    );
    let request = reqwest::Client::new()
        .post(format!("{}/chat/completions", setup.base_url))
        .bearer_auth(&setup.token)
        .json(&serde_json::json!({
            "model": "claude-haiku-4-5",
            "messages": [{"role": "user", "content": "take your time"}],
        }))
        .send();
    // The client gives up while the provider is still thinking.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), request)
            .await
            .is_err(),
        "the answer came before the client left"
    );
    assert!(usage_rows(&setup).await.is_empty());

    // The provider is billed for the whole answer: the gateway reads it to its end and records it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let row = loop {
        if let Some(row) = usage_rows(&setup).await.into_iter().next() {
            break row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the call was dropped with its client"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row.outcome, "ok");
    assert_eq!(row.model, "claude-haiku-4-5");
    assert_eq!((row.input_tokens, row.output_tokens), (900, 40));
    assert_eq!(cloud.received().len(), 1);
}

#[tokio::test]
async fn tokens_tiers_and_missing_providers_are_enforced() {
    let database = TestDatabase::migrated(db::Backend::Sqlite).await;
    let mut services = services_with_gateway(&database);
    services.tiers = std::sync::Arc::new(
        services::policy::TierPolicy::parse(
            // The test's person is the instance's first account: its administrator, on the top
            // tier, limited here too.
            "[public]\nmodes = []\n[free]\nrequests_per_day = 2\nmodes = [\"chat\"]\n[premium]\nmodes = [\"*\"]\n[enterprise]\nrequests_per_day = 2\nmodes = [\"*\"]\n",
        )
        .unwrap(),
    );
    // The services work on `database`, which must outlive them (`setup` makes its own too).
    let setup = setup(db::Backend::Sqlite, Some(services)).await;

    // No token or a wrong one: 401 with OpenAI's error shape.
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", setup.base_url);
    let body = serde_json::json!({"model": "qwen2.5-coder", "messages": [{"role": "user", "content": "hi"}]});
    for request in [
        client.post(&url).json(&body),
        client.post(&url).bearer_auth("acp_wrong").json(&body),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_api_key");
    }
    // A browser's cookie never authenticates here; a cross-site post with one is refused.
    let response = client
        .post(&url)
        .header("cookie", "__Host-session=whatever")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(setup.local.received().len(), 0);

    // The plan here allows two requests a day; the third is refused before any provider call.
    // Fields naming another address are ignored: the key goes where it was saved for.
    setup.local.always(openai::completion("ok", 1, 1));
    let mut redirecting = body.clone();
    redirecting["api_base"] = serde_json::json!("http://127.0.0.1:9/v1");
    redirecting["base_url"] = serde_json::json!("http://169.254.169.254/");
    for request in [redirecting, body.clone()] {
        assert_eq!(post_json(&setup, request).await.status(), 200);
    }
    usage_rows(&setup).await;
    let response = post_json(&setup, body.clone()).await;
    assert_eq!(response.status(), 429);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "tier_limit_reached");
    assert_eq!(setup.local.received().len(), 2);

    // A user without any provider is told plainly.
    let (bob, _) = setup
        .services
        .sign_up(
            services::accounts::SignUp {
                email: "bob@example.com".into(),
                name: "Bob".into(),
                password: SecretString::from("correct horse battery staple".to_owned()),
            },
            &RequestMeta::default(),
        )
        .await
        .unwrap();
    let (_, bob_token) = setup
        .services
        .create_access_token(&bob, "cli", 30, TokenScopes::ALL, &RequestMeta::default())
        .await
        .unwrap();
    let response = client
        .post(&url)
        .bearer_auth(secrecy_text(&bob_token))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "no_provider_configured");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No AI provider is configured")
    );
}

#[tokio::test]
async fn testing_a_key_asks_the_provider_and_stores_the_answer() {
    let setup = setup(db::Backend::Sqlite, None).await;
    setup
        .local
        .push(openai::models(&["qwen2.5-coder", "llama3.2"]));
    let result = setup
        .services
        .test_credential(&setup.user, setup.local_credential)
        .await
        .unwrap();
    assert!(result.ok && result.models == 2, "{result:?}");
    let status = |setup: &Setup| {
        let connection = setup.database.database.connection().clone();
        let id = setup.local_credential;
        async move {
            provider_credentials::Entity::find_by_id(id)
                .one(&connection)
                .await
                .unwrap()
                .unwrap()
                .status
        }
    };
    assert_eq!(
        status(&setup).await,
        provider_credentials::CredentialStatus::Valid
    );

    setup.local.push(openai::error(
        401,
        "invalid_request_error",
        Some("invalid_api_key"),
        "Incorrect API key provided",
    ));
    let result = setup
        .services
        .test_credential(&setup.user, setup.local_credential)
        .await
        .unwrap();
    assert!(
        !result.ok && result.message.contains("refused the API key"),
        "{result:?}"
    );
    assert_eq!(
        status(&setup).await,
        provider_credentials::CredentialStatus::Invalid
    );
    assert_eq!(setup.local.received()[1].uri, "/v1/models");

    // Another user's credential does not exist for them.
    let (bob, _) = setup
        .services
        .sign_up(
            services::accounts::SignUp {
                email: "bob@example.com".into(),
                name: "Bob".into(),
                password: SecretString::from("correct horse battery staple".to_owned()),
            },
            &RequestMeta::default(),
        )
        .await
        .unwrap();
    assert!(matches!(
        setup
            .services
            .test_credential(&bob, setup.local_credential)
            .await,
        Err(services::Error::NotFound)
    ));
    assert_eq!(setup.local.received().len(), 2);
}
