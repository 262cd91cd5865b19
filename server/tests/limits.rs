//! Limits hold under concurrency: every limiter reserves its slot before the work it limits, in
//! one step (the database's conditional update for plan counters and project counts, the rate
//! limit's row locked for the sign-in throttle and sign-ups), so requests sent at once cannot
//! all pass a check made before any of them is counted, on one instance or spread over three.

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
                        outcome: db::UsageOutcome::Ok,
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

/// The most attempts a failure counter with `free` free failures admits in `elapsed`: the free
/// ones, the one that starts the first delay (1 s), and one more each time a delay (doubling
/// each time) has passed before the next attempt came.
fn most_admitted(free: u32, elapsed: std::time::Duration) -> u32 {
    let mut admitted = free + 1;
    let mut delays = 0.0;
    let mut delay = 1.0;
    while delays + delay <= elapsed.as_secs_f64() {
        delays += delay;
        delay *= 2.0;
        admitted += 1;
    }
    admitted
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
    let started = std::time::Instant::now();
    // Fifteen wrong guesses at once.
    let guesses: Vec<_> = (0..15)
        .map(|number| {
            let services = services.clone();
            let meta = meta.clone();
            let password = format!("wrong guess number {number}");
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
            Err(Error::SignInFailed) => checked += 1,
            Err(Error::RateLimited { .. }) => throttled += 1,
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("a wrong password signed in"),
        }
    }
    // Five free failures and the one that starts the delay; never all fifteen (one more only
    // if a delay passed while the guesses queued).
    assert!(
        (6..=most_admitted(5, started.elapsed())).contains(&checked),
        "{checked} checked, {throttled} throttled in {:?}",
        started.elapsed()
    );
}

/// Three instances of one database, each with a connection pool of its own.
async fn three_instances(database: &TestDatabase) -> Vec<services::Services> {
    let mut instances = Vec::new();
    for _ in 0..3 {
        let connection = db::Database::connect(&database.url).await.unwrap();
        instances.push(services::Services::new(
            connection,
            services::secrets::MasterKey::generate(1).unwrap(),
        ));
    }
    instances
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_calls_over_three_instances_with_room_for_ten_admit_exactly_ten() {
    use services::rate_limit::{FailurePolicy, WindowPolicy};
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let instances = three_instances(&database).await;
        let window = WindowPolicy {
            limit: 10,
            window: std::time::Duration::from_secs(3600),
        };
        // Nine free failures, and the tenth starts the delay.
        let failures = FailurePolicy {
            free: 9,
            cap: std::time::Duration::from_secs(60),
        };
        let started = std::time::Instant::now();
        let calls: Vec<_> = (0..50)
            .map(|number| {
                let services = instances[number % 3].clone();
                tokio::spawn(async move {
                    let window_admitted = services.limiter.hit("test|window", window).await;
                    let attempt_admitted = services
                        .limiter
                        .reserve_attempt("test|attempts", failures)
                        .await;
                    (window_admitted, attempt_admitted)
                })
            })
            .collect();
        let (mut windows, mut attempts) = (0, 0);
        for call in calls {
            let (window_admitted, attempt_admitted) = call.await.unwrap();
            for (admitted, count) in [
                (window_admitted, &mut windows),
                (attempt_admitted, &mut attempts),
            ] {
                match admitted {
                    Ok(()) => *count += 1,
                    Err(Error::RateLimited { .. }) => {}
                    Err(other) => panic!("{}: {other:?}", backend.name()),
                }
            }
        }
        assert_eq!(windows, 10, "{}: window", backend.name());
        // The failure counter admits its nine free failures and the one that starts the delay,
        // and one more only if a delay passed while the calls queued.
        assert!(
            (10..=most_admitted(9, started.elapsed())).contains(&attempts),
            "{}: failure counter admitted {attempts} in {:?}",
            backend.name(),
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guesses_spread_over_three_instances_are_throttled_as_on_one() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let instances = three_instances(&database).await;
        support::sign_up_with(&instances[0], "ada@example.com").await;
        let meta = RequestMeta {
            ip: Some("198.51.100.7".parse().unwrap()),
            user_agent: None,
        };
        let started = std::time::Instant::now();
        let guesses: Vec<_> = (0..15)
            .map(|number| {
                let services = instances[number % 3].clone();
                let meta = meta.clone();
                tokio::spawn(async move {
                    services
                        .sign_in(
                            "ada@example.com",
                            SecretString::from(format!("wrong guess number {number}")),
                            &meta,
                        )
                        .await
                })
            })
            .collect();
        let (mut checked, mut throttled) = (0, 0);
        for guess in guesses {
            match guess.await.unwrap() {
                Err(Error::SignInFailed) => checked += 1,
                Err(Error::RateLimited { .. }) => throttled += 1,
                Err(other) => panic!("{}: {other:?}", backend.name()),
                Ok(_) => panic!("{}: a wrong password signed in", backend.name()),
            }
        }
        // Five free failures and the one that starts the delay, whichever instance they reach
        // (one more only if a delay passed while the guesses queued).
        assert!(
            (6..=most_admitted(5, started.elapsed())).contains(&checked),
            "{}: {checked} checked, {throttled} throttled",
            backend.name()
        );
        // And the delay holds on every instance.
        for services in &instances {
            let refused = services
                .sign_in(
                    "ada@example.com",
                    SecretString::from("correct horse battery staple".to_owned()),
                    &meta,
                )
                .await;
            assert!(
                matches!(refused, Err(Error::RateLimited { .. })),
                "{}",
                backend.name()
            );
        }
    }
}
