//! The schema on both databases: every migration up and down, and every entity written and read
//! back, so that entities and migrations cannot drift apart.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use chrono::{SubsecRound, Utc};
use db::ids::*;
use db::sea_orm::{
    ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, ModelTrait, PaginatorTrait,
    Statement,
};
use db::tables::*;
use db::testing::{TestDatabase, backends};
use db::{Backend, Database};
use migrations::{Migrator, MigratorTrait, TABLES};

async fn table_names(database: &Database) -> Vec<String> {
    let connection = database.connection();
    let sql = match database.backend() {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        Backend::Postgres => {
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        }
    };
    let rows = connection
        .query_all_raw(Statement::from_string(
            connection.get_database_backend(),
            sql,
        ))
        .await
        .expect("listing tables");
    rows.iter()
        .map(|row| row.try_get::<String>("", "name").expect("table name"))
        .filter(|name| name != "seaql_migrations" && !name.starts_with("sqlite_"))
        .collect()
}

#[tokio::test]
async fn every_migration_goes_up_and_down_on_every_backend() {
    for backend in backends() {
        let test_database = TestDatabase::empty(backend).await;
        let database = &test_database.database;
        assert!(
            table_names(database).await.is_empty(),
            "{backend:?}: fresh database has tables"
        );

        database.migrate().await.expect("migrating up");
        let mut expected: Vec<String> = TABLES.iter().map(|name| (*name).to_owned()).collect();
        expected.sort();
        assert_eq!(
            table_names(database).await,
            expected,
            "{backend:?}: tables after up"
        );
        let applied = database
            .applied_migrations()
            .await
            .expect("applied migrations");
        assert_eq!(applied.len(), Migrator::migrations().len(), "{backend:?}");

        // Migrating again is a no-op.
        database.migrate().await.expect("migrating up twice");

        // Each migration rolls back on its own, newest first, and removes only its tables.
        let mut remaining = Migrator::migrations().len();
        while remaining > 0 {
            Migrator::down(database.connection(), Some(1))
                .await
                .unwrap_or_else(|error| panic!("{backend:?}: down failed: {error}"));
            remaining -= 1;
            assert_eq!(
                database.applied_migrations().await.expect("applied").len(),
                remaining
            );
        }
        assert!(
            table_names(database).await.is_empty(),
            "{backend:?}: tables left after down"
        );

        // And the whole way up again.
        database.migrate().await.expect("migrating up after down");
        assert_eq!(
            table_names(database).await,
            expected,
            "{backend:?}: tables after re-up"
        );
    }
}

#[tokio::test]
async fn every_entity_round_trips_on_every_backend() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let connection = test_database.database.connection();
        // Postgres keeps microseconds; compare at that precision.
        let now = Utc::now().trunc_subsecs(6);

        let user = users::Model {
            id: UserId::new(),
            email: "ada@example.com".into(),
            name: "Ada".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            role: users::Role::Admin,
            tier: users::Tier::Premium,
            avatar_url: None,
            preferences: Some(serde_json::json!({"theme": "dark"})),
            disabled_at: None,
            created_at: now,
            updated_at: now,
        };
        user.clone()
            .into_active_model()
            .insert(connection)
            .await
            .expect("insert user");

        let session = sessions::Model {
            id: SessionId::new(),
            user_id: user.id,
            token_hash: "hash".into(),
            ip_address: Some("127.0.0.1".into()),
            user_agent: None,
            created_at: now,
            last_seen_at: now,
            expires_at: now,
        };
        session
            .clone()
            .into_active_model()
            .insert(connection)
            .await
            .expect("insert session");

        let project = projects::Model {
            id: ProjectId::new(),
            owner_id: user.id,
            name: "demo".into(),
            description: Some("A demo".into()),
            repository_url: Some("https://example.com/demo.git".into()),
            created_at: now,
            updated_at: now,
        };
        project
            .clone()
            .into_active_model()
            .insert(connection)
            .await
            .expect("insert project");

        let file = files::Model {
            id: FileId::new(),
            project_id: project.id,
            path: "src/main.rs".into(),
            content: "fn main() {}\n".into(),
            language: Some("rust".into()),
            version: 1,
            created_at: now,
            updated_at: now,
            size_bytes: 13,
            binary_content: None,
            is_binary: false,
        };
        file.clone()
            .into_active_model()
            .insert(connection)
            .await
            .expect("insert file");

        // (project, path) is unique.
        let duplicate = files::Model {
            id: FileId::new(),
            ..file.clone()
        };
        assert!(
            duplicate
                .into_active_model()
                .insert(connection)
                .await
                .is_err(),
            "{backend:?}: a second file at the same path was accepted"
        );

        let revision = file_revisions::Model {
            id: FileRevisionId::new(),
            file_id: file.id,
            version: 1,
            content: file.content.clone(),
            author_id: Some(user.id),
            source: file_revisions::RevisionSource::User,
            created_at: now,
            size_bytes: 13,
            binary_content: Some(vec![0, 159, 255]),
            path: Some("src/main.rs".into()),
        };
        revision
            .clone()
            .into_active_model()
            .insert(connection)
            .await
            .expect("insert revision");

        let conversation = conversations::Model {
            id: ConversationId::new(),
            user_id: user.id,
            project_id: Some(project.id),
            title: "Why?".into(),
            mode: "ask".into(),
            model: None,
            context_choices: None,
            created_at: now,
            updated_at: now,
        };
        conversation
            .clone()
            .into_active_model()
            .insert(connection)
            .await
            .expect("conversation");

        let message = messages::Model {
            id: MessageId::new(),
            conversation_id: conversation.id,
            role: messages::MessageRole::Assistant,
            content: "Because.".into(),
            status: messages::MessageStatus::Interrupted,
            metadata: Some(serde_json::json!({"model": "gpt-test", "usage": {"input": 3}})),
            created_at: now,
            updated_at: now,
        };
        message
            .clone()
            .into_active_model()
            .insert(connection)
            .await
            .expect("insert message");

        let usage = api_usage::Model {
            id: ApiUsageId::new(),
            user_id: user.id,
            conversation_id: Some(conversation.id),
            message_id: Some(message.id),
            provider: "openai".into(),
            model: "gpt-test".into(),
            mode: "ask".into(),
            input_tokens: 1_200_000,
            output_tokens: 345,
            cached_tokens: 1_000,
            cache_write_tokens: 0,
            reasoning_tokens: 64,
            cost_micros: 12_345_678_901,
            created_at: now,
            outcome: "ok".into(),
            error_kind: None,
        };
        usage
            .clone()
            .into_active_model()
            .insert(connection)
            .await
            .expect("insert usage");

        let credential = provider_credentials::Model {
            id: ProviderCredentialId::new(),
            user_id: user.id,
            provider: provider_credentials::ProviderKind::Anthropic,
            label: "default".into(),
            base_url: None,
            encrypted_key: Some(vec![0, 1, 2, 250, 255]),
            key_last_four: Some("abcd".into()),
            status: provider_credentials::CredentialStatus::Valid,
            last_verified_at: Some(now),
            created_at: now,
            updated_at: now,
        };
        credential
            .clone()
            .into_active_model()
            .insert(connection)
            .await
            .expect("credential");

        let audit = audit_log::Model {
            id: AuditLogId::new(),
            actor_id: Some(user.id),
            action: "user.sign_in".into(),
            target_type: Some("user".into()),
            target_id: Some(user.id.to_string()),
            ip_address: None,
            user_agent: Some("Mozilla/5.0".into()),
            detail: Some(serde_json::json!({"method": "password"})),
            created_at: now,
        };
        audit
            .clone()
            .into_active_model()
            .insert(connection)
            .await
            .expect("insert audit");

        assert_eq!(
            users::Entity::find_by_id(user.id)
                .one(connection)
                .await
                .expect("q"),
            Some(user.clone())
        );
        assert_eq!(
            sessions::Entity::find_by_id(session.id)
                .one(connection)
                .await
                .expect("q"),
            Some(session)
        );
        assert_eq!(
            projects::Entity::find_by_id(project.id)
                .one(connection)
                .await
                .expect("q"),
            Some(project.clone())
        );
        assert_eq!(
            files::Entity::find_by_id(file.id)
                .one(connection)
                .await
                .expect("q"),
            Some(file)
        );
        assert_eq!(
            file_revisions::Entity::find_by_id(revision.id)
                .one(connection)
                .await
                .expect("q"),
            Some(revision)
        );
        assert_eq!(
            conversations::Entity::find_by_id(conversation.id)
                .one(connection)
                .await
                .expect("q"),
            Some(conversation)
        );
        assert_eq!(
            messages::Entity::find_by_id(message.id)
                .one(connection)
                .await
                .expect("q"),
            Some(message)
        );
        assert_eq!(
            api_usage::Entity::find_by_id(usage.id)
                .one(connection)
                .await
                .expect("q"),
            Some(usage)
        );
        assert_eq!(
            provider_credentials::Entity::find_by_id(credential.id)
                .one(connection)
                .await
                .expect("q"),
            Some(credential)
        );
        assert_eq!(
            audit_log::Entity::find_by_id(audit.id)
                .one(connection)
                .await
                .expect("q"),
            Some(audit.clone())
        );

        // Deleting the user removes what is theirs and keeps the audit trail (actor set to null).
        user.delete(connection).await.expect("delete user");
        assert_eq!(
            projects::Entity::find()
                .count(connection)
                .await
                .expect("count"),
            0
        );
        assert_eq!(
            files::Entity::find()
                .count(connection)
                .await
                .expect("count"),
            0
        );
        assert_eq!(
            messages::Entity::find()
                .count(connection)
                .await
                .expect("count"),
            0
        );
        assert_eq!(
            api_usage::Entity::find()
                .count(connection)
                .await
                .expect("count"),
            0
        );
        assert_eq!(
            provider_credentials::Entity::find()
                .count(connection)
                .await
                .expect("count"),
            0
        );
        let kept = audit_log::Entity::find_by_id(audit.id)
            .one(connection)
            .await
            .expect("q");
        assert_eq!(kept.map(|entry| entry.actor_id), Some(None), "{backend:?}");
    }
}

#[tokio::test]
async fn ping_and_pool_statistics_report_a_live_database() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        test_database.database.ping().await.expect("ping");
        let statistics = test_database.database.pool_statistics();
        assert!(
            statistics.size >= 1 && statistics.size <= statistics.max,
            "{statistics:?}"
        );
    }
}

#[tokio::test]
async fn a_dropped_postgres_database_fails_the_ping() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let test_database = TestDatabase::migrated(Backend::Postgres).await;
    test_database.database.ping().await.expect("ping before");
    test_database.drop_postgres_database().await;
    assert!(test_database.database.ping().await.is_err());
}

#[tokio::test]
async fn an_unsupported_url_is_a_clear_error() {
    let error = Database::connect("mysql://root@127.0.0.1/test")
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(error.to_string().contains("expected sqlite://"), "{error}");
}

/// Many sign-ups at once: each reads (is this the first user?) and then writes. On SQLite a
/// transaction that starts deferred and upgrades to a writer fails at once with "database is
/// locked" when another connection wrote in between; write transactions take the lock at BEGIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_write_transactions_wait_for_each_other() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let mut sign_ups = tokio::task::JoinSet::new();
        for number in 0..24 {
            let database = test_database.database.clone();
            sign_ups.spawn(async move {
                database
                    .create_user(
                        db::NewUser {
                            email: format!("person{number}@example.com"),
                            name: format!("Person {number}"),
                            password_hash: "hash".into(),
                        },
                        Utc::now(),
                    )
                    .await
            });
        }
        let mut admins = 0;
        while let Some(joined) = sign_ups.join_next().await {
            let user = joined
                .expect("the task ran")
                .unwrap_or_else(|error| panic!("{backend:?}: a sign-up failed: {error}"));
            if user.role == users::Role::Admin {
                admins += 1;
            }
        }
        assert_eq!(admins, 1, "{backend:?}: exactly the first account is admin");
    }
}

/// Every connection of an SQLite pool writes ahead (readers and the writer do not block each
/// other) and commits without waiting for the disk each time (`synchronous = NORMAL`: a commit
/// survives the process being killed), not only the first connection.
#[tokio::test]
async fn every_sqlite_connection_writes_ahead_and_commits_without_a_sync_each_time() {
    use db::sea_orm::TransactionTrait;
    let test = TestDatabase::migrated(Backend::Sqlite).await;
    let connection = test.database.connection();
    // Transactions held at once each hold a connection of their own.
    let mut held = Vec::new();
    for _ in 0..4 {
        #[allow(
            clippy::disallowed_methods,
            reason = "read-only: held only so that each holds a connection of its own"
        )]
        let transaction = connection.begin().await.unwrap();
        let pragma = |sql: &str| Statement::from_string(transaction.get_database_backend(), sql);
        let mode = transaction
            .query_one_raw(pragma("PRAGMA journal_mode"))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<String>(0)
            .unwrap();
        let synchronous = transaction
            .query_one_raw(pragma("PRAGMA synchronous"))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i32>(0)
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(synchronous, 1, "NORMAL");
        held.push(transaction);
    }
}
