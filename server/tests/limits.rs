//! Limits hold under concurrency: every limiter reserves its slot before the work it limits, in
//! one step (the database's conditional update for plan counters and project counts, one lock
//! for the sign-in throttle), so requests sent at once cannot all pass a check made before any
//! of them is counted.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::sync::Arc;

use chrono::Utc;
use db::testing::{TestDatabase, backends};
use services::policy::TierPolicy;
use services::projects::ProjectInput;
use services::{Error, RequestMeta, SecretString};

const TIERS: &str = "[public]\nrequests_per_day = 0\nmodes = []\nmax_projects = 0\n\
    [free]\nrequests_per_day = 25\nmodes = [\"*\"]\nmax_projects = 3\n\
    [premium]\nmodes = [\"*\"]\n[enterprise]\nmodes = [\"*\"]\n";

fn limited_services(database: &TestDatabase) -> services::Services {
    let mut services = support::services_for(database);
    services.tiers = Arc::new(TierPolicy::parse(TIERS).unwrap());
    services
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_ai_requests_with_room_for_ten_admit_exactly_ten() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = limited_services(&database);
        // The first account is the administrator (top tier); the second is on the free plan.
        support::sign_up_with(&services, "root@example.com").await;
        let (user, _) = support::sign_up_with(&services, "ada@example.com").await;
        assert_eq!(user.tier, db::tables::users::Tier::Free);
        // 15 of the day's 25 requests were made before (the counter is seeded from them).
        for _ in 0..15 {
            database
                .database
                .record_usage(
                    db::NewUsage {
                        user_id: user.id,
                        provider: "openai".into(),
                        model: "gpt-4o".into(),
                        mode: "chat".into(),
                        outcome: "ok",
                        ..db::NewUsage::default()
                    },
                    Utc::now(),
                )
                .await
                .unwrap();
        }
        let attempts: Vec<_> = (0..50)
            .map(|_| {
                let services = services.clone();
                let user = user.clone();
                tokio::spawn(async move { services.reserve_ai_request(&user).await })
            })
            .collect();
        let mut admitted = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(()) => admitted += 1,
                Err(Error::LimitReached(message)) => {
                    assert!(message.contains("daily"), "{message}")
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(admitted, 10, "{}", backend.name());
        assert!(services.reserve_ai_request(&user).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_project_creations_stop_exactly_at_the_plan_limit() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = limited_services(&database);
        support::sign_up_with(&services, "root@example.com").await;
        let (user, _) = support::sign_up_with(&services, "ada@example.com").await;
        let creations: Vec<_> = (0..20)
            .map(|number| {
                let services = services.clone();
                let user = user.clone();
                tokio::spawn(async move {
                    services
                        .create_project(
                            &user,
                            ProjectInput {
                                name: format!("project {number}"),
                                ..ProjectInput::default()
                            },
                            &RequestMeta::default(),
                        )
                        .await
                })
            })
            .collect();
        let mut created = 0;
        for creation in creations {
            match creation.await.unwrap() {
                Ok(_) => created += 1,
                Err(Error::LimitReached(message)) => assert!(message.contains('3'), "{message}"),
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(created, 3, "{}", backend.name());
        assert_eq!(database.database.count_projects(user.id).await.unwrap(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guesses_sent_at_once_are_throttled_before_their_passwords_are_checked() {
    let database = TestDatabase::migrated(db::Backend::Sqlite).await;
    let services = support::services_for(&database);
    support::sign_up_with(&services, "ada@example.com").await;
    let meta = RequestMeta {
        ip: Some("198.51.100.7".parse().unwrap()),
        user_agent: None,
    };
    // Fifteen guesses at once, the right password last.
    let guesses: Vec<_> = (0..15)
        .map(|number| {
            let services = services.clone();
            let meta = meta.clone();
            let password = if number == 14 {
                "correct horse battery staple".to_owned()
            } else {
                format!("wrong guess number {number}")
            };
            tokio::spawn(async move {
                services
                    .sign_in("ada@example.com", SecretString::from(password), &meta)
                    .await
            })
        })
        .collect();
    let (mut checked, mut throttled) = (0, 0);
    for guess in guesses {
        match guess.await.unwrap() {
            Ok(_) | Err(Error::SignInFailed) => checked += 1,
            Err(Error::RateLimited { .. }) => throttled += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    // Five free failures and the one that starts the delay; never all fifteen.
    assert_eq!(checked, 6, "{checked} checked, {throttled} throttled");
    assert_eq!(throttled, 9);
}
