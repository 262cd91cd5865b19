//! Provider credentials: encrypted at rest, never sent back, scoped to their owner.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use axum::Router;
use axum::http::StatusCode;
use db::sea_orm::EntityTrait;
use db::testing::{TestDatabase, backends};

const CANARY: &str = "sk-canary-7f3a9c2e51d04b8f";

/// The settings page offers the kinds the gateway knows, under the gateway's names (the one list,
/// `llm::ProviderKind::ALL`).
#[test]
fn the_page_names_provider_kinds_as_the_gateway_does() {
    for choice in app::types::ProviderChoice::ALL {
        let kind: llm::ProviderKind = choice.as_str().parse().expect("a kind the gateway knows");
        assert_eq!(kind.name(), choice.as_str());
    }
    assert_eq!(
        app::types::ProviderChoice::ALL.len(),
        llm::ProviderKind::ALL.len()
    );
}

/// The router, with an administrator having allowed one local server (127.0.0.1:11434).
fn router_for(database: &TestDatabase) -> Router {
    let mut services = support::services_for(database);
    services.ai = services::ai::Ai::new(
        llm::AddressPolicy::new(vec![
            llm::AllowedEndpoint::parse("127.0.0.1:11434").unwrap(),
        ]),
        llm::Timeouts::default(),
        llm::RetryPolicy::default(),
    );
    support::router_for(services)
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
        // Private and loopback addresses only where an administrator allowed them.
        for refused in [
            "http%3A%2F%2F127.0.0.1%3A6379%2F",
            "http%3A%2F%2F169.254.169.254%2Flatest",
            "http%3A%2F%2F0x7f000001%3A11435%2Fv1",
            "http%3A%2F%2F%5B%3A%3Affff%3A127.0.0.1%5D%3A8080%2F",
            "http%3A%2F%2Flocalhost.%3A11434%2Fv1",
        ] {
            let (status, body, _) = post(
                &router,
                "/api/providers/save",
                &format!("provider=openai_compatible&label=ollama&api_key=&base_url={refused}"),
                Some(&ada),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}: {body}");
            assert!(body.contains("administrator"), "{body}");
        }
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

#[tokio::test]
async fn rotating_the_master_key_reencrypts_every_key_all_or_nothing() {
    use db::sea_orm::QueryOrder;
    use services::ExposeSecret;
    use services::secrets::{MASTER_KEY_FILE, MasterKey};
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let folder = std::env::temp_dir().join(format!(
            "async-coder-rotation-{}-{}",
            std::process::id(),
            backend.name()
        ));
        if folder.exists() {
            std::fs::remove_dir_all(&folder).unwrap();
        }
        let first_key = MasterKey::load_or_create(&folder).unwrap();
        assert_eq!(first_key.version(), 1);
        let services = services::Services::new(database.database.clone(), first_key);
        let meta = services::RequestMeta::default();
        let (ada, _) = services
            .sign_up(
                services::accounts::SignUp {
                    email: "ada@example.com".into(),
                    name: "Ada".into(),
                    password: "correct horse battery staple".to_owned().into(),
                },
                &meta,
            )
            .await
            .unwrap();
        let mut ids = Vec::new();
        for (provider, key) in [
            (
                db::tables::provider_credentials::ProviderKind::OpenAi,
                CANARY,
            ),
            (
                db::tables::provider_credentials::ProviderKind::Anthropic,
                "sk-ant-second-canary-99",
            ),
        ] {
            let saved = services
                .save_credential(
                    &ada,
                    services::providers::SaveCredential {
                        provider,
                        label: "default".into(),
                        api_key: Some(key.to_owned().into()),
                        base_url: None,
                    },
                    &meta,
                )
                .await
                .unwrap();
            ids.push((saved.id, key));
        }
        let stored_before = db::tables::provider_credentials::Entity::find()
            .order_by_asc(db::tables::provider_credentials::Column::Id)
            .all(database.database.connection())
            .await
            .unwrap();

        let rotation = services::secrets::rotate(
            &database.database,
            &folder.join(services::secrets::MASTER_KEY_FILE),
        )
        .await
        .unwrap();
        assert_eq!(
            (
                rotation.old_version,
                rotation.new_version,
                rotation.keys_reencrypted
            ),
            (1, 2, 2)
        );
        assert!(rotation.new_environment_value.is_none());
        assert!(!folder.join(format!("{MASTER_KEY_FILE}.next")).exists());

        // The new key file decrypts every key; the old key decrypts none.
        let rotated = services::Services::new(
            database.database.clone(),
            MasterKey::load_or_create(&folder).unwrap(),
        );
        assert_eq!(rotated.master_key.version(), 2);
        for (id, key) in &ids {
            let clear = rotated.credential_key(&ada, *id).await.unwrap().unwrap();
            assert_eq!(clear.expose_secret(), *key);
            assert!(services.credential_key(&ada, *id).await.is_err());
        }
        let stored_after = db::tables::provider_credentials::Entity::find()
            .order_by_asc(db::tables::provider_credentials::Column::Id)
            .all(database.database.connection())
            .await
            .unwrap();
        for (before, after) in stored_before.iter().zip(&stored_after) {
            assert_ne!(before.encrypted_key, after.encrypted_key);
        }

        // A row that does not decrypt (here: under a foreign key) stops the rotation and leaves
        // every row and the key file as they were.
        let foreign = MasterKey::generate(2).unwrap();
        let stray = foreign
            .encrypt(&"sk-stray".to_owned().into(), "nobody|openai|stray")
            .unwrap();
        use db::sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};
        let mut row = stored_after[0].clone().into_active_model();
        row.encrypted_key = Set(Some(stray.clone()));
        row.update(database.database.connection()).await.unwrap();
        let key_file_before = std::fs::read_to_string(folder.join(MASTER_KEY_FILE)).unwrap();
        assert!(
            services::secrets::rotate(
                &database.database,
                &folder.join(services::secrets::MASTER_KEY_FILE)
            )
            .await
            .is_err()
        );
        assert_eq!(
            std::fs::read_to_string(folder.join(MASTER_KEY_FILE)).unwrap(),
            key_file_before
        );
        let unchanged = db::tables::provider_credentials::Entity::find()
            .order_by_asc(db::tables::provider_credentials::Column::Id)
            .all(database.database.connection())
            .await
            .unwrap();
        assert_eq!(unchanged[1].encrypted_key, stored_after[1].encrypted_key);
        assert!(!folder.join(format!("{MASTER_KEY_FILE}.next")).exists());
        std::fs::remove_dir_all(&folder).unwrap();
        database.drop_postgres_database().await;
    }
}
