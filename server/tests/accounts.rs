//! Accounts and the security baseline through the real router, on SQLite and Postgres.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use db::sea_orm::ConnectionTrait;
use db::testing::{TestDatabase, backends};
use support::{Reply, json, post, router_for, send};

#[tokio::test]
async fn sign_up_in_and_out_with_server_side_sessions() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = services::Services::new(
            database.database.clone(),
            services::secrets::MasterKey::generate(1).unwrap(),
        );
        let router = router_for(services);

        // The first account becomes admin; role and tier sent by the client are ignored.
        let first = post(
            &router,
            "/api/auth/sign-up",
            "email=Ada%40Example.com&name=Ada&password=correct+horse+battery+staple",
            None,
            "127.0.0.1",
        )
        .await;
        assert_eq!(first.status, StatusCode::OK, "{backend:?}: {}", first.body);
        assert_eq!(json(&first)["role"], "admin");
        assert_eq!(json(&first)["email"], "ada@example.com");
        let second = post(&router, "/api/auth/sign-up", "email=bob%40example.com&name=Bob&password=correct+horse+battery+staple&role=admin&tier=enterprise", None, "127.0.0.1").await;
        assert_eq!(second.status, StatusCode::OK, "{}", second.body);
        assert_eq!(
            (json(&second)["role"].clone(), json(&second)["tier"].clone()),
            ("user".into(), "free".into())
        );

        // The session cookie is HttpOnly and SameSite=Lax; on plain-http loopback it drops the
        // `__Host-` prefix and `Secure`.
        let set_cookie = second.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            set_cookie.starts_with("session=")
                && set_cookie.contains("HttpOnly")
                && set_cookie.contains("SameSite=Lax"),
            "{set_cookie}"
        );
        let bob = second.session_cookie().unwrap();

        let me = post(&router, "/api/auth/me", "", Some(&bob), "127.0.0.1").await;
        assert_eq!(json(&me)["name"], "Bob");
        let visitor = post(&router, "/api/auth/me", "", None, "127.0.0.1").await;
        assert_eq!(visitor.body, "null");

        // Taken email, bad input: clear messages, nothing created.
        let taken = support::sign_up(&router, "BOB", "Bob2").await;
        assert_eq!(taken.status, StatusCode::CONFLICT);
        let common = post(
            &router,
            "/api/auth/sign-up",
            "email=c%40example.com&name=C&password=password123",
            None,
            "127.0.0.1",
        )
        .await;
        assert_eq!(common.status, StatusCode::BAD_REQUEST);
        assert!(common.body.contains("most common"), "{}", common.body);
        let short = post(
            &router,
            "/api/auth/sign-up",
            "email=c%40example.com&name=C&password=abc",
            None,
            "127.0.0.1",
        )
        .await;
        assert!(
            short.body.contains("at least 8 characters"),
            "{}",
            short.body
        );
        let long = post(
            &router,
            "/api/auth/sign-up",
            &format!("email=c%40example.com&name=C&password={}", "x".repeat(129)),
            None,
            "127.0.0.1",
        )
        .await;
        assert!(
            long.body.contains("at most 128 characters"),
            "{}",
            long.body
        );

        // Wrong password and unknown email: the same answer.
        let wrong = post(
            &router,
            "/api/auth/sign-in",
            "email=bob%40example.com&password=not+the+password",
            None,
            "127.0.0.2",
        )
        .await;
        let unknown = post(
            &router,
            "/api/auth/sign-in",
            "email=nobody%40example.com&password=not+the+password",
            None,
            "127.0.0.2",
        )
        .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            (wrong.status, wrong.body.clone()),
            (unknown.status, unknown.body.clone())
        );

        // Signing in rotates the session: a new token, and the one sent along is ended.
        let signed_in = post(
            &router,
            "/api/auth/sign-in",
            "email=bob%40example.com&password=correct+horse+battery+staple",
            Some(&bob),
            "127.0.0.1",
        )
        .await;
        assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
        let rotated = signed_in.session_cookie().unwrap();
        assert_ne!(rotated, bob);
        assert_eq!(
            post(&router, "/api/auth/me", "", Some(&bob), "127.0.0.1")
                .await
                .body,
            "null"
        );
        assert_eq!(
            json(&post(&router, "/api/auth/me", "", Some(&rotated), "127.0.0.1").await)["name"],
            "Bob"
        );

        // Signing out ends the session on the server, whatever the browser keeps.
        let out = post(
            &router,
            "/api/auth/sign-out",
            "",
            Some(&rotated),
            "127.0.0.1",
        )
        .await;
        assert_eq!(out.status, StatusCode::OK, "{}", out.body);
        assert!(
            out.headers[header::SET_COOKIE]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        assert_eq!(
            post(&router, "/api/auth/me", "", Some(&rotated), "127.0.0.1")
                .await
                .body,
            "null"
        );
        assert_eq!(
            post(
                &router,
                "/api/auth/sign-out",
                "",
                Some(&rotated),
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::UNAUTHORIZED
        );

        // Every step left an audit row with address and user agent.
        let bob_id = db::ids::UserId(json(&second)["id"].as_str().unwrap().parse().unwrap());
        let actions: Vec<_> = database.database.audit_entries_of(bob_id).await.unwrap();
        for action in [
            "user.sign_up",
            "user.sign_in_failed",
            "user.sign_in",
            "user.sign_out",
        ] {
            let entry = actions
                .iter()
                .find(|entry| entry.action == action)
                .unwrap_or_else(|| panic!("{backend:?}: no {action}"));
            assert!(
                entry.ip_address.is_some()
                    && entry.user_agent.as_deref() == Some("accounts-test/1.0"),
                "{entry:?}"
            );
        }
        // No password ever reaches the audit log.
        assert!(
            actions
                .iter()
                .all(|entry| !format!("{entry:?}").contains("horse"))
        );
    }
}

#[tokio::test]
async fn repeated_failures_are_slowed_down_without_locking_out_the_real_user() {
    let database = TestDatabase::migrated(db::Backend::Sqlite).await;
    let router = router_for(services::Services::new(
        database.database.clone(),
        services::secrets::MasterKey::generate(1).unwrap(),
    ));
    support::sign_up(&router, "ada", "Ada").await;

    let attacker = "198.51.100.7";
    for _ in 0..6 {
        let reply = post(
            &router,
            "/api/auth/sign-in",
            "email=ada%40example.com&password=guess+guess+guess",
            None,
            attacker,
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    }
    let limited = post(
        &router,
        "/api/auth/sign-in",
        "email=ada%40example.com&password=correct+horse+battery+staple",
        None,
        attacker,
    )
    .await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    let retry_after: u64 = limited.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert!(
        json(&limited)["RateLimited"]["retry_after_seconds"]
            .as_u64()
            .unwrap()
            >= 1,
        "{}",
        limited.body
    );

    // The real user, elsewhere, still gets in.
    let real = post(
        &router,
        "/api/auth/sign-in",
        "email=ada%40example.com&password=correct+horse+battery+staple",
        None,
        "203.0.113.20",
    )
    .await;
    assert_eq!(real.status, StatusCode::OK, "{}", real.body);

    // Sign-ups are limited per address.
    let mut statuses = Vec::new();
    for number in 0..11 {
        let form = format!(
            "email=user{number}%40example.com&name=U&password=correct+horse+battery+staple"
        );
        statuses.push(
            post(&router, "/api/auth/sign-up", &form, None, "192.0.2.50")
                .await
                .status,
        );
    }
    assert!(
        statuses[..10]
            .iter()
            .all(|status| *status == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(statuses[10], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn sessions_end_when_idle_or_too_old() {
    let database = TestDatabase::migrated(db::Backend::Sqlite).await;
    let mut services = services::Services::new(
        database.database.clone(),
        services::secrets::MasterKey::generate(1).unwrap(),
    );
    services.sessions.absolute_timeout = chrono::Duration::zero();
    let router = router_for(services);
    let reply = support::sign_up(&router, "ada", "Ada").await;
    let cookie = reply.session_cookie().unwrap();
    assert_eq!(
        post(&router, "/api/auth/me", "", Some(&cookie), "127.0.0.1")
            .await
            .body,
        "null"
    );

    let mut services = services::Services::new(
        database.database.clone(),
        services::secrets::MasterKey::generate(1).unwrap(),
    );
    services.sessions.idle_timeout = chrono::Duration::zero();
    let router = router_for(services);
    let reply = post(
        &router,
        "/api/auth/sign-in",
        "email=ada%40example.com&password=correct+horse+battery+staple",
        None,
        "127.0.0.1",
    )
    .await;
    let cookie = reply.session_cookie().unwrap();
    assert_eq!(
        post(&router, "/api/auth/me", "", Some(&cookie), "127.0.0.1")
            .await
            .body,
        "null"
    );
}

#[tokio::test]
async fn cross_site_requests_are_refused_and_pages_carry_a_policy() {
    let database = TestDatabase::migrated(db::Backend::Sqlite).await;
    let router = router_for(services::Services::new(
        database.database.clone(),
        services::secrets::MasterKey::generate(1).unwrap(),
    ));
    let reply = support::sign_up(&router, "ada", "Ada").await;
    let cookie = reply.session_cookie().unwrap();

    // A form on another site posting with the victim's cookie.
    let forged = Request::builder()
        .method("POST")
        .uri("/api/auth/sign-out")
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&router, forged).await.status, StatusCode::FORBIDDEN);
    let fetch_metadata = Request::builder()
        .method("POST")
        .uri("/api/settings/theme")
        .header("sec-fetch-site", "cross-site")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("theme=dark"))
        .unwrap();
    assert_eq!(
        send(&router, fetch_metadata).await.status,
        StatusCode::FORBIDDEN
    );
    let no_origin_with_cookie = Request::builder()
        .method("POST")
        .uri("/api/auth/sign-out")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&router, no_origin_with_cookie).await.status,
        StatusCode::FORBIDDEN
    );
    // The session survived all three.
    assert_eq!(
        json(&post(&router, "/api/auth/me", "", Some(&cookie), "127.0.0.1").await)["name"],
        "Ada"
    );

    let page = send(
        &router,
        Request::builder().uri("/").body(Body::empty()).unwrap(),
    )
    .await;
    let policy = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("script-src 'self' 'nonce-") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(
        page.body.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries the nonce"
    );
    let health = send(
        &router,
        Request::builder()
            .uri("/healthz")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        health.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[tokio::test]
async fn people_manage_their_own_account() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let router = router_for(services::Services::new(
            database.database.clone(),
            services::secrets::MasterKey::generate(1).unwrap(),
        ));
        let sign_up = support::sign_up(&router, "ada", "Ada").await;
        let laptop = sign_up.session_cookie().unwrap();
        let phone = post(
            &router,
            "/api/auth/sign-in",
            "email=ada%40example.com&password=correct+horse+battery+staple",
            None,
            "127.0.0.1",
        )
        .await
        .session_cookie()
        .unwrap();

        // Without a session: 401 on every account endpoint.
        for (path, form) in [
            ("/api/account/profile", ""),
            ("/api/account/update-profile", "name=X&avatar_url="),
            (
                "/api/account/change-password",
                "current_password=a&new_password=b",
            ),
            ("/api/account/delete", "password=a"),
        ] {
            assert_eq!(
                post(&router, path, form, None, "127.0.0.1").await.status,
                StatusCode::UNAUTHORIZED,
                "{path}"
            );
        }
        // A malformed request is a 400, not a server error.
        assert_eq!(
            post(
                &router,
                "/api/account/update-profile",
                "",
                Some(&laptop),
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::BAD_REQUEST
        );

        // Profile.
        let bad = post(
            &router,
            "/api/account/update-profile",
            "name=Ada+L&avatar_url=javascript%3Aalert(1)",
            Some(&laptop),
            "127.0.0.1",
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let good = post(
            &router,
            "/api/account/update-profile",
            "name=Ada+L&avatar_url=https%3A%2F%2Fexample.com%2Fa.png",
            Some(&laptop),
            "127.0.0.1",
        )
        .await;
        assert_eq!(good.status, StatusCode::OK, "{}", good.body);
        let profile = json(
            &post(
                &router,
                "/api/account/profile",
                "",
                Some(&laptop),
                "127.0.0.1",
            )
            .await,
        );
        assert_eq!(
            (profile["name"].as_str(), profile["avatar_url"].as_str()),
            (Some("Ada L"), Some("https://example.com/a.png"))
        );

        // Password change: needs the current password, follows the policy, ends every other session.
        let wrong = post(
            &router,
            "/api/account/change-password",
            "current_password=nope&new_password=another+long+passphrase",
            Some(&laptop),
            "127.0.0.1",
        )
        .await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
        let weak = post(
            &router,
            "/api/account/change-password",
            "current_password=correct+horse+battery+staple&new_password=12345678",
            Some(&laptop),
            "127.0.0.1",
        )
        .await;
        assert_eq!(weak.status, StatusCode::BAD_REQUEST);
        let changed = post(
            &router,
            "/api/account/change-password",
            "current_password=correct+horse+battery+staple&new_password=another+long+passphrase",
            Some(&laptop),
            "127.0.0.1",
        )
        .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
        let fresh = changed.session_cookie().unwrap();
        assert_eq!(
            post(&router, "/api/auth/me", "", Some(&phone), "127.0.0.1")
                .await
                .body,
            "null"
        );
        assert_eq!(
            post(&router, "/api/auth/me", "", Some(&laptop), "127.0.0.1")
                .await
                .body,
            "null"
        );
        assert_eq!(
            json(&post(&router, "/api/auth/me", "", Some(&fresh), "127.0.0.1").await)["name"],
            "Ada L"
        );
        assert_eq!(
            post(
                &router,
                "/api/auth/sign-in",
                "email=ada%40example.com&password=correct+horse+battery+staple",
                None,
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::UNAUTHORIZED
        );

        // Deletion: needs the password; removes what the account owns.
        let user_id = db::ids::UserId(json(&sign_up)["id"].as_str().unwrap().parse().unwrap());
        let now = chrono::Utc::now();
        let project = db::tables::projects::Model {
            id: db::ids::ProjectId::new(),
            owner_id: user_id,
            name: "mine".into(),
            description: None,
            repository_url: None,
            created_at: now,
            updated_at: now,
        };
        db::sea_orm::ActiveModelTrait::insert(
            db::sea_orm::IntoActiveModel::into_active_model(project),
            database.database.connection(),
        )
        .await
        .unwrap();
        let refused = post(
            &router,
            "/api/account/delete",
            "password=wrong",
            Some(&fresh),
            "127.0.0.1",
        )
        .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        let deleted = post(
            &router,
            "/api/account/delete",
            "password=another+long+passphrase",
            Some(&fresh),
            "127.0.0.1",
        )
        .await;
        assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
        assert_eq!(
            post(&router, "/api/auth/me", "", Some(&fresh), "127.0.0.1")
                .await
                .body,
            "null"
        );
        let remaining = db::sea_orm::PaginatorTrait::count(
            <db::tables::projects::Entity as db::sea_orm::EntityTrait>::find(),
            database.database.connection(),
        )
        .await
        .unwrap();
        assert_eq!(remaining, 0, "{backend:?}");
        assert!(
            database
                .database
                .find_user(user_id)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn administrators_manage_access_and_read_the_audit_log() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let router = router_for(services::Services::new(
            database.database.clone(),
            services::secrets::MasterKey::generate(1).unwrap(),
        ));
        let admin = support::sign_up(&router, "root", "Root")
            .await
            .session_cookie()
            .unwrap();
        let bob_reply = support::sign_up(&router, "bob", "Bob").await;
        let bob = bob_reply.session_cookie().unwrap();
        let bob_id = json(&bob_reply)["id"].as_str().unwrap().to_owned();
        let root_id =
            json(&post(&router, "/api/auth/me", "", Some(&admin), "127.0.0.1").await)["id"]
                .as_str()
                .unwrap()
                .to_owned();

        // Not for ordinary users.
        for (path, form) in [
            ("/api/admin/users", String::new()),
            ("/api/admin/audit", String::new()),
            (
                "/api/admin/update-user",
                format!("id={bob_id}&role=admin&tier=free&disabled=false"),
            ),
        ] {
            assert_eq!(
                post(&router, path, &form, Some(&bob), "127.0.0.1")
                    .await
                    .status,
                StatusCode::FORBIDDEN,
                "{path}"
            );
        }

        let users = json(&post(&router, "/api/admin/users", "", Some(&admin), "127.0.0.1").await);
        assert_eq!(users.as_array().unwrap().len(), 2);

        // A tier change shows at once.
        let premium = post(
            &router,
            "/api/admin/update-user",
            &format!("id={bob_id}&role=user&tier=premium&disabled=false"),
            Some(&admin),
            "127.0.0.1",
        )
        .await;
        assert_eq!(premium.status, StatusCode::OK, "{}", premium.body);
        assert_eq!(
            json(&post(&router, "/api/auth/me", "", Some(&bob), "127.0.0.1").await)["tier"],
            "premium"
        );

        // Disabling ends the sessions and refuses sign-in; enabling lets the user back in.
        let disabled = post(
            &router,
            "/api/admin/update-user",
            &format!("id={bob_id}&role=user&tier=premium&disabled=true"),
            Some(&admin),
            "127.0.0.1",
        )
        .await;
        assert_eq!(json(&disabled)["disabled"], true);
        assert_eq!(
            post(&router, "/api/auth/me", "", Some(&bob), "127.0.0.1")
                .await
                .body,
            "null"
        );
        let refused = post(
            &router,
            "/api/auth/sign-in",
            "email=bob%40example.com&password=correct+horse+battery+staple",
            None,
            "127.0.0.1",
        )
        .await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(refused.body.contains("disabled"), "{}", refused.body);
        post(
            &router,
            "/api/admin/update-user",
            &format!("id={bob_id}&role=user&tier=premium&disabled=false"),
            Some(&admin),
            "127.0.0.1",
        )
        .await;
        assert_eq!(
            post(
                &router,
                "/api/auth/sign-in",
                "email=bob%40example.com&password=correct+horse+battery+staple",
                None,
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::OK
        );

        // Bad values, unknown users, and removing one's own admin role are refused.
        assert_eq!(
            post(
                &router,
                "/api/admin/update-user",
                &format!("id={bob_id}&role=owner&tier=free&disabled=false"),
                Some(&admin),
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            post(
                &router,
                "/api/admin/update-user",
                "id=0190a000-0000-7000-8000-000000000000&role=user&tier=free&disabled=false",
                Some(&admin),
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            post(
                &router,
                "/api/admin/update-user",
                &format!("id={root_id}&role=user&tier=free&disabled=false"),
                Some(&admin),
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::BAD_REQUEST
        );

        let audit = json(&post(&router, "/api/admin/audit", "", Some(&admin), "127.0.0.1").await);
        let actions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"admin.user_access_changed") && actions.contains(&"user.sign_up"),
            "{actions:?}"
        );
    }
}

async fn with_bearer(router: &Router, path: &str, token: &str) -> Reply {
    let request = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::empty())
        .unwrap();
    send(router, request).await
}

#[tokio::test]
async fn personal_access_tokens_act_as_their_user_until_revoked_or_expired() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = services::Services::new(
            database.database.clone(),
            services::secrets::MasterKey::generate(1).unwrap(),
        );
        let token_cache = services.token_cache.clone();
        let router = router_for(services);
        let admin = support::sign_up(&router, "root", "Root")
            .await
            .session_cookie()
            .unwrap();
        let ada_reply = support::sign_up(&router, "ada", "Ada").await;
        let ada = ada_reply.session_cookie().unwrap();
        let ada_id = json(&ada_reply)["id"].as_str().unwrap().to_owned();

        assert_eq!(
            post(
                &router,
                "/api/tokens/create",
                "name=ci&days=0&scopes=read",
                Some(&ada),
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            post(
                &router,
                "/api/tokens/create",
                "name=&days=30&scopes=read",
                Some(&ada),
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::BAD_REQUEST
        );
        let created = post(
            &router,
            "/api/tokens/create",
            "name=ci&days=30&scopes=read",
            Some(&ada),
            "127.0.0.1",
        )
        .await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.body);
        let secret = json(&created)["secret"].as_str().unwrap().to_owned();
        let token_id = json(&created)["token"]["id"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("acp_") && secret.len() > 40);

        // Shown once: never listed, never stored in clear.
        let list = post(&router, "/api/tokens/list", "", Some(&ada), "127.0.0.1").await;
        assert!(
            !list.body.contains(&secret) && list.body.contains("\"ci\""),
            "{}",
            list.body
        );
        let rows = <db::tables::access_tokens::Entity as db::sea_orm::EntityTrait>::find()
            .all(database.database.connection())
            .await
            .unwrap();
        assert!(rows.iter().all(|row| !format!("{row:?}").contains(&secret)));

        // The token is Ada, within its scopes.
        assert_eq!(
            json(&with_bearer(&router, "/api/auth/me", &secret).await)["email"],
            "ada@example.com"
        );
        assert_eq!(
            with_bearer(&router, "/api/projects/list", &secret)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            with_bearer(&router, "/api/admin/users", &secret)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            with_bearer(&router, "/api/auth/me", "acp_not-a-real-token")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );

        // Suspension follows the user.
        post(
            &router,
            "/api/admin/update-user",
            &format!("id={ada_id}&role=user&tier=free&disabled=true"),
            Some(&admin),
            "127.0.0.1",
        )
        .await;
        assert_eq!(
            with_bearer(&router, "/api/projects/list", &secret)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        post(
            &router,
            "/api/admin/update-user",
            &format!("id={ada_id}&role=user&tier=free&disabled=false"),
            Some(&admin),
            "127.0.0.1",
        )
        .await;
        let ada = post(
            &router,
            "/api/auth/sign-in",
            "email=ada%40example.com&password=correct+horse+battery+staple",
            None,
            "127.0.0.1",
        )
        .await
        .session_cookie()
        .unwrap();
        assert_eq!(
            with_bearer(&router, "/api/projects/list", &secret)
                .await
                .status,
            StatusCode::OK
        );

        // Only its owner revokes it; then it is dead.
        assert_eq!(
            post(
                &router,
                "/api/tokens/revoke",
                &format!("id={token_id}"),
                Some(&admin),
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            post(
                &router,
                "/api/tokens/revoke",
                &format!("id={token_id}"),
                Some(&ada),
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::OK
        );
        assert_eq!(
            with_bearer(&router, "/api/projects/list", &secret)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );

        // An expired token is refused.
        let expiring = json(
            &post(
                &router,
                "/api/tokens/create",
                "name=short&days=1&scopes=read",
                Some(&ada),
                "127.0.0.1",
            )
            .await,
        )["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            with_bearer(&router, "/api/auth/me", &expiring).await.status,
            StatusCode::OK
        );
        database
            .database
            .connection()
            .execute_unprepared("UPDATE access_tokens SET expires_at = created_at")
            .await
            .unwrap();
        // A change made behind this process's back applies once the cache's entry is older
        // than `TokenCache::TTL`; the test does not wait that long.
        token_cache.clear();
        assert_eq!(
            with_bearer(&router, "/api/auth/me", &expiring).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn tokens_are_limited_to_their_scopes_never_manage_tokens_and_end_with_the_password() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = services::Services::new(
            database.database.clone(),
            services::secrets::MasterKey::generate(1).unwrap(),
        );
        let router = router_for(services);
        let ada = support::sign_up(&router, "ada", "Ada")
            .await
            .session_cookie()
            .unwrap();
        let create = |scopes: &'static str| {
            let router = router.clone();
            let ada = ada.clone();
            async move {
                let reply = post(
                    &router,
                    "/api/tokens/create",
                    &format!("name=t&days=30&scopes={scopes}"),
                    Some(&ada),
                    "127.0.0.1",
                )
                .await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                json(&reply)["secret"].as_str().unwrap().to_owned()
            }
        };
        assert_eq!(
            post(
                &router,
                "/api/tokens/create",
                "name=t&days=30&scopes=",
                Some(&ada),
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::BAD_REQUEST,
            "a token that may do nothing"
        );
        assert_eq!(
            post(
                &router,
                "/api/tokens/create",
                "name=t&days=30&scopes=admin",
                Some(&ada),
                "127.0.0.1"
            )
            .await
            .status,
            StatusCode::BAD_REQUEST,
            "an unknown scope"
        );
        let reader = create("read").await;
        let writer = create("read+write").await;
        let everything = create("ai+read+write").await;

        // Read, not write.
        assert_eq!(
            with_bearer(&router, "/api/projects/list", &reader)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            with_bearer(&router, "/api/projects/create", &reader)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        assert_ne!(
            with_bearer(&router, "/api/projects/create", &writer)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        // No token manages tokens, the account or provider keys, whatever its scopes: a token
        // that could mint tokens would outlive its own revocation.
        for path in [
            "/api/tokens/create",
            "/api/tokens/list",
            "/api/tokens/revoke",
            "/api/account/change-password",
            "/api/account/delete",
            "/api/providers/list",
            "/api/providers/save",
            "/api/auth/sign-out",
        ] {
            assert_eq!(
                with_bearer(&router, path, &everything).await.status,
                StatusCode::FORBIDDEN,
                "{path}"
            );
        }
        // The AI endpoint needs the AI scope.
        let models = |token: String| {
            let router = router.clone();
            async move {
                let request = Request::builder()
                    .method("GET")
                    .uri("/v1/models")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap();
                send(&router, request).await.status
            }
        };
        assert_eq!(models(writer.clone()).await, StatusCode::FORBIDDEN);
        assert_eq!(models(everything.clone()).await, StatusCode::OK);

        // The tasks' JSON API: reading needs `read`, starting a task `ai` and `write`.
        let tasks = |method: &'static str, token: String| {
            let router = router.clone();
            async move {
                let request = Request::builder()
                    .method(method)
                    .uri("/api/tasks")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from("{}"))
                    .unwrap();
                send(&router, request).await.status
            }
        };
        assert_eq!(tasks("GET", reader.clone()).await, StatusCode::OK);
        assert_eq!(tasks("POST", writer.clone()).await, StatusCode::FORBIDDEN);
        // With every scope the request reaches the API (whose body check refuses `{}`).
        assert_eq!(
            tasks("POST", everything.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY
        );

        // A password change revokes every token.
        let changed = post(
            &router,
            "/api/account/change-password",
            "current_password=correct+horse+battery+staple&new_password=another+long+pass+phrase+9",
            Some(&ada),
            "127.0.0.1",
        )
        .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
        for token in [&reader, &writer, &everything] {
            assert_eq!(
                with_bearer(&router, "/api/projects/list", token)
                    .await
                    .status,
                StatusCode::UNAUTHORIZED
            );
        }
    }
}
