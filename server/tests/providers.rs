//! Provider credentials: encrypted at rest, never sent back, scoped to their owner.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use axum::Router;
use axum::http::StatusCode;
use db::sea_orm::EntityTrait;
use db::testing::{TestDatabase, backends};

const CANARY: &str = "sk-canary-7f3a9c2e51d04b8f";

fn router_for(database: &TestDatabase) -> Router {
    support::test_router(database)
}

async fn post(
    router: &Router,
    path: &str,
    form: &str,
    cookie: Option<&str>,
) -> (StatusCode, String, Option<String>) {
    let reply = support::post(router, path, form, cookie, "127.0.0.1").await;
    let cookie = reply.session_cookie();
    (reply.status, reply.body, cookie)
}

async fn sign_up(router: &Router, email: &str) -> String {
    let form = format!("email={email}&name=Someone&password=correct+horse+battery+staple");
    let (status, body, cookie) = post(router, "/api/auth/sign-up", &form, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    cookie.unwrap()
}

#[tokio::test]
async fn keys_are_encrypted_never_returned_and_scoped_to_their_owner() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let router = router_for(&database);
        let ada = sign_up(&router, "ada%40example.com").await;
        let bob = sign_up(&router, "bob%40example.com").await;

        let (status, body, _) = post(&router, "/api/providers/list", "", Some(&ada)).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));

        let (status, body, _) = post(
            &router,
            "/api/providers/save",
            &format!("provider=openai&label=&api_key={CANARY}&base_url="),
            Some(&ada),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!body.contains(CANARY), "{body}");
        let saved: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(saved["key_last_four"], "4b8f");
        assert_eq!(saved["label"], "default");
        let id = saved["id"].as_str().unwrap().to_owned();

        // Stored encrypted: the row holds no trace of the key.
        let rows = db::tables::provider_credentials::Entity::find()
            .all(database.database.connection())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let stored = rows[0].encrypted_key.clone().unwrap();
        assert!(!String::from_utf8_lossy(&stored).contains("canary"));
        assert!(!format!("{:?}", rows[0]).contains(CANARY));

        // Replacing under the same provider and label keeps one row.
        let (status, body, _) = post(
            &router,
            "/api/providers/save",
            "provider=openai&label=default&api_key=sk-second-key-0000&base_url=",
            Some(&ada),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, list, _) = post(&router, "/api/providers/list", "", Some(&ada)).await;
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["key_last_four"], "0000");

        // A local server needs an address; a hosted provider needs a key.
        let (status, body, _) = post(
            &router,
            "/api/providers/save",
            "provider=openai_compatible&label=ollama&api_key=&base_url=",
            Some(&ada),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, _, _) = post(&router, "/api/providers/save", "provider=openai_compatible&label=ollama&api_key=&base_url=http%3A%2F%2F127.0.0.1%3A11434%2Fv1", Some(&ada)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body, _) = post(
            &router,
            "/api/providers/save",
            "provider=anthropic&label=&api_key=&base_url=",
            Some(&ada),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body, _) = post(
            &router,
            "/api/providers/save",
            "provider=cohere&label=&api_key=x&base_url=",
            Some(&ada),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        // Bob sees none of Ada's credentials and cannot remove them; a visitor gets 401.
        let (_, list, _) = post(&router, "/api/providers/list", "", Some(&bob)).await;
        assert_eq!(list, "[]");
        let (status, _, _) = post(
            &router,
            "/api/providers/remove",
            &format!("id={id}"),
            Some(&bob),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = post(&router, "/api/providers/list", "", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let (status, _, _) = post(
            &router,
            "/api/providers/remove",
            &format!("id={id}"),
            Some(&ada),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = post(
            &router,
            "/api/providers/remove",
            &format!("id={id}"),
            Some(&ada),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend:?}");
    }
}
