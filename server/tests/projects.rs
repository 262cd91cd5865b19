//! Projects and the workspace's files through the real HTTP surface, on SQLite and Postgres:
//! paths, conflicts, revisions, restore, search, import/export and limits.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::io::{Cursor, Read, Write};

use axum::Router;
use axum::http::StatusCode;
use db::testing::{TestDatabase, backends};
use serde_json::Value;
use support::{Reply, form_value, json};

async fn call(router: &Router, cookie: &str, path: &str, fields: &[(&str, &str)]) -> Reply {
    let form = fields
        .iter()
        .map(|(name, value)| format!("{name}={}", form_value(value)))
        .collect::<Vec<_>>()
        .join("&");
    support::post(router, path, &form, Some(cookie), "127.0.0.1").await
}

async fn ok(router: &Router, cookie: &str, path: &str, fields: &[(&str, &str)]) -> Value {
    let reply = call(router, cookie, path, fields).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    json(&reply)
}

async fn new_user(router: &Router, local: &str) -> String {
    let reply = support::sign_up(router, local, "Someone").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.session_cookie().unwrap()
}

async fn new_project(router: &Router, cookie: &str, name: &str) -> String {
    let project = ok(
        router,
        cookie,
        "/api/projects/create",
        &[("name", name), ("description", ""), ("repository_url", "")],
    )
    .await;
    project["id"].as_str().unwrap().to_owned()
}

async fn tree_paths(router: &Router, cookie: &str, project: &str) -> (Vec<String>, Vec<String>) {
    let tree = ok(
        router,
        cookie,
        "/api/files/tree",
        &[("project_id", project)],
    )
    .await;
    let strings = |value: &Value, key: Option<&str>| -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                match key {
                    Some(key) => item[key].as_str().unwrap(),
                    None => item.as_str().unwrap(),
                }
                .to_owned()
            })
            .collect()
    };
    (
        strings(&tree["folders"], None),
        strings(&tree["files"], Some("path")),
    )
}

#[tokio::test]
async fn projects_are_created_edited_listed_deleted_and_limited_by_plan() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let router = support::test_router(&database);
        // The first account is the administrator, on the top tier; Ada is on the free plan.
        new_user(&router, "root").await;
        let ada = new_user(&router, "ada").await;

        let reply = call(
            &router,
            &ada,
            "/api/projects/create",
            &[("name", "  "), ("description", ""), ("repository_url", "")],
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(reply.body.contains("needs a name"), "{}", reply.body);

        let id = new_project(&router, &ada, "First").await;
        let updated = ok(
            &router,
            &ada,
            "/api/projects/update",
            &[
                ("project_id", &id),
                ("name", "Renamed"),
                ("description", "What it does"),
                ("repository_url", "https://example.com/r.git"),
            ],
        )
        .await;
        assert_eq!(updated["name"], "Renamed");
        assert_eq!(updated["description"], "What it does");
        let listed = ok(&router, &ada, "/api/projects/list", &[]).await;
        assert_eq!(listed.as_array().unwrap().len(), 1);
        assert_eq!(listed[0]["name"], "Renamed");

        // The free plan allows three projects (ada is the first account, an admin on the free
        // plan: the role does not lift the plan's limits).
        new_project(&router, &ada, "Second").await;
        new_project(&router, &ada, "Third").await;
        let reply = call(
            &router,
            &ada,
            "/api/projects/create",
            &[
                ("name", "Fourth"),
                ("description", ""),
                ("repository_url", ""),
            ],
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
        assert!(reply.body.contains("3 projects"), "{}", reply.body);

        ok(
            &router,
            &ada,
            "/api/projects/delete",
            &[("project_id", &id)],
        )
        .await;
        let reply = call(&router, &ada, "/api/projects/get", &[("project_id", &id)]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(
            ok(&router, &ada, "/api/projects/list", &[])
                .await
                .as_array()
                .unwrap()
                .len(),
            2
        );
        database.drop_postgres_database().await;
    }
}

#[tokio::test]
async fn paths_are_checked_in_one_place_and_a_bad_one_changes_nothing() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let router = support::test_router(&database);
        let ada = new_user(&router, "ada").await;
        let project = new_project(&router, &ada, "Paths").await;

        let file = ok(
            &router,
            &ada,
            "/api/files/create",
            &[
                ("project_id", &project),
                ("path", "./src//main.rs"),
                ("content", "fn main() {}\n"),
            ],
        )
        .await;
        assert_eq!(file["path"], "src/main.rs");
        assert_eq!(file["language"], "rust");
        assert_eq!(file["version"], 1);
        ok(
            &router,
            &ada,
            "/api/files/create-folder",
            &[("project_id", &project), ("path", "docs/empty")],
        )
        .await;
        let before = tree_paths(&router, &ada, &project).await;
        assert_eq!(before.0, vec!["docs", "docs/empty", "src"]);
        assert_eq!(before.1, vec!["src/main.rs"]);

        for (path, expected) in [
            ("../outside.rs", "'..'"),
            ("/etc/passwd", "absolute"),
            ("a\0b", "NUL"),
            ("", "required"),
        ] {
            for endpoint in ["/api/files/create", "/api/files/create-folder"] {
                let reply = call(
                    &router,
                    &ada,
                    endpoint,
                    &[("project_id", &project), ("path", path), ("content", "x")],
                )
                .await;
                assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path:?}");
                assert!(reply.body.contains(expected), "{path:?}: {}", reply.body);
            }
            let reply = call(
                &router,
                &ada,
                "/api/files/move",
                &[("project_id", &project), ("from", "src"), ("to", path)],
            )
            .await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path:?}");
        }
        let reply = call(
            &router,
            &ada,
            "/api/files/create",
            &[
                ("project_id", &project),
                ("path", "src/main.rs"),
                ("content", "again"),
            ],
        )
        .await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert!(
            reply
                .body
                .contains("A file or folder src/main.rs exists already."),
            "{}",
            reply.body
        );
        let reply = call(
            &router,
            &ada,
            "/api/files/create",
            &[
                ("project_id", &project),
                ("path", "src/main.rs/inner.rs"),
                ("content", ""),
            ],
        )
        .await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        let reply = call(
            &router,
            &ada,
            "/api/files/move",
            &[
                ("project_id", &project),
                ("from", "docs"),
                ("to", "docs/empty/deeper"),
            ],
        )
        .await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(tree_paths(&router, &ada, &project).await, before);

        // Moving a folder moves what it holds; deleting one deletes it all.
        ok(
            &router,
            &ada,
            "/api/files/move",
            &[
                ("project_id", &project),
                ("from", "src"),
                ("to", "crates/app/src"),
            ],
        )
        .await;
        let (folders, files) = tree_paths(&router, &ada, &project).await;
        assert_eq!(files, vec!["crates/app/src/main.rs"]);
        assert_eq!(
            folders,
            vec![
                "crates",
                "crates/app",
                "crates/app/src",
                "docs",
                "docs/empty"
            ]
        );
        let moved = ok(
            &router,
            &ada,
            "/api/files/open",
            &[
                ("project_id", &project),
                ("file_id", file["id"].as_str().unwrap()),
            ],
        )
        .await;
        assert_eq!(moved["content"], "fn main() {}\n");
        ok(
            &router,
            &ada,
            "/api/files/delete",
            &[("project_id", &project), ("path", "crates")],
        )
        .await;
        let (folders, files) = tree_paths(&router, &ada, &project).await;
        assert!(files.is_empty());
        assert_eq!(folders, vec!["docs", "docs/empty"]);
        let reply = call(
            &router,
            &ada,
            "/api/files/delete",
            &[("project_id", &project), ("path", "crates")],
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        database.drop_postgres_database().await;
    }
}

#[tokio::test]
async fn saves_never_overwrite_and_every_revision_can_be_restored() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let router = support::test_router(&database);
        let ada = new_user(&router, "ada").await;
        let project = new_project(&router, &ada, "History").await;
        let file = ok(
            &router,
            &ada,
            "/api/files/create",
            &[
                ("project_id", &project),
                ("path", "notes.md"),
                ("content", "first\r\n"),
            ],
        )
        .await;
        let file_id = file["id"].as_str().unwrap().to_owned();
        let save = |base: &'static str, content: &'static str| {
            let router = router.clone();
            let ada = ada.clone();
            let project = project.clone();
            let file_id = file_id.clone();
            async move {
                ok(
                    &router,
                    &ada,
                    "/api/files/save",
                    &[
                        ("project_id", &project),
                        ("file_id", &file_id),
                        ("base_version", base),
                        ("content", content),
                    ],
                )
                .await
            }
        };

        assert_eq!(save("1", "second").await["Saved"]["version"], 2);
        // A second page still based on version 1: a conflict that carries the current text, and
        // nothing is overwritten.
        let conflict = save("1", "stale edit").await;
        assert_eq!(conflict["Conflict"]["current"]["content"], "second");
        assert_eq!(conflict["Conflict"]["current"]["version"], 2);
        let opened = ok(
            &router,
            &ada,
            "/api/files/open",
            &[("project_id", &project), ("file_id", &file_id)],
        )
        .await;
        assert_eq!(opened["content"], "second");
        // Keeping mine after seeing the conflict is a save based on the version now current.
        assert_eq!(save("2", "third").await["Saved"]["version"], 3);

        let revisions = ok(
            &router,
            &ada,
            "/api/files/revisions",
            &[("project_id", &project), ("file_id", &file_id)],
        )
        .await;
        let revisions = revisions.as_array().unwrap().clone();
        assert_eq!(revisions.len(), 3);
        assert_eq!(revisions[0]["version"], 3);
        assert_eq!(revisions[2]["version"], 1);
        assert_eq!(revisions[2]["author"], "Someone");
        assert_eq!(revisions[2]["size_bytes"], 7);
        assert_eq!(revisions[2]["source"], "user");
        let first_id = revisions[2]["id"].as_str().unwrap();
        let first = ok(
            &router,
            &ada,
            "/api/files/revision",
            &[
                ("project_id", &project),
                ("file_id", &file_id),
                ("revision_id", first_id),
            ],
        )
        .await;
        assert_eq!(first["content"], "first\r\n");

        // Restoring based on an old version is a conflict too.
        let reply = ok(
            &router,
            &ada,
            "/api/files/restore",
            &[
                ("project_id", &project),
                ("file_id", &file_id),
                ("revision_id", first_id),
                ("base_version", "2"),
            ],
        )
        .await;
        assert!(reply.get("Conflict").is_some(), "{reply}");
        let restored = ok(
            &router,
            &ada,
            "/api/files/restore",
            &[
                ("project_id", &project),
                ("file_id", &file_id),
                ("revision_id", first_id),
                ("base_version", "3"),
            ],
        )
        .await;
        assert_eq!(restored["Saved"]["version"], 4);
        let opened = ok(
            &router,
            &ada,
            "/api/files/open",
            &[("project_id", &project), ("file_id", &file_id)],
        )
        .await;
        assert_eq!(opened["content"], "first\r\n");
        let revisions = ok(
            &router,
            &ada,
            "/api/files/revisions",
            &[("project_id", &project), ("file_id", &file_id)],
        )
        .await;
        assert_eq!(revisions.as_array().unwrap().len(), 4);
        assert_eq!(revisions[0]["source"], "restore");

        let reply = call(
            &router,
            &ada,
            "/api/files/save",
            &[
                ("project_id", &project),
                ("file_id", &file_id),
                ("base_version", "four"),
                ("content", "x"),
            ],
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        database.drop_postgres_database().await;
    }
}

#[tokio::test]
async fn two_saves_based_on_the_same_version_cannot_both_win() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let router = support::test_router(&database);
        let ada = new_user(&router, "ada").await;
        let project = new_project(&router, &ada, "Race").await;
        let file = ok(
            &router,
            &ada,
            "/api/files/create",
            &[
                ("project_id", &project),
                ("path", "race.txt"),
                ("content", "0"),
            ],
        )
        .await;
        let file_id = file["id"].as_str().unwrap().to_owned();
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let (router, ada, project, file_id) = (
                router.clone(),
                ada.clone(),
                project.clone(),
                file_id.clone(),
            );
            tasks.push(tokio::spawn(async move {
                ok(
                    &router,
                    &ada,
                    "/api/files/save",
                    &[
                        ("project_id", &project),
                        ("file_id", &file_id),
                        ("base_version", "1"),
                        ("content", &format!("writer {writer}")),
                    ],
                )
                .await
            }));
        }
        let mut saved = 0;
        for task in tasks {
            if task.await.unwrap().get("Saved").is_some() {
                saved += 1;
            }
        }
        assert_eq!(saved, 1);
        let revisions = ok(
            &router,
            &ada,
            "/api/files/revisions",
            &[("project_id", &project), ("file_id", &file_id)],
        )
        .await;
        assert_eq!(revisions.as_array().unwrap().len(), 2);
        database.drop_postgres_database().await;
    }
}

#[tokio::test]
async fn search_finds_plain_text_and_regular_expressions() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let router = support::test_router(&database);
        let ada = new_user(&router, "ada").await;
        let project = new_project(&router, &ada, "Search").await;
        for (path, content) in [
            (
                "src/lib.rs",
                "pub fn parse_config() {}\nfn helper() { parse_config(); }\n",
            ),
            ("README.md", "Call Parse_Config first.\n"),
            ("other.txt", "nothing here\n"),
        ] {
            ok(
                &router,
                &ada,
                "/api/files/create",
                &[
                    ("project_id", &project),
                    ("path", path),
                    ("content", content),
                ],
            )
            .await;
        }
        let search = |pattern: &'static str, regex: &'static str, case: &'static str| {
            let (router, ada, project) = (router.clone(), ada.clone(), project.clone());
            async move {
                call(
                    &router,
                    &ada,
                    "/api/files/search",
                    &[
                        ("project_id", &project),
                        ("pattern", pattern),
                        ("regex", regex),
                        ("case_sensitive", case),
                    ],
                )
                .await
            }
        };
        let found = json(&search("parse_config", "false", "false").await);
        let hits: Vec<(String, u64, u64)> = found["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hit| {
                (
                    hit["path"].as_str().unwrap().to_owned(),
                    hit["line"].as_u64().unwrap(),
                    hit["column"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            hits,
            vec![
                ("README.md".to_owned(), 1, 6),
                ("src/lib.rs".to_owned(), 1, 8),
                ("src/lib.rs".to_owned(), 2, 15),
            ]
        );
        assert_eq!(found["files_searched"], 3);
        let found = json(&search("parse_config", "false", "true").await);
        assert_eq!(found["hits"].as_array().unwrap().len(), 2);
        let found = json(&search(r"fn \w+\(\)", "true", "true").await);
        assert_eq!(found["hits"].as_array().unwrap().len(), 2);
        // A dot is plain text unless the search is a regular expression.
        let found = json(&search("first.", "false", "false").await);
        assert_eq!(found["hits"].as_array().unwrap().len(), 1);
        let found = json(&search("a.b", "false", "false").await);
        assert!(found["hits"].as_array().unwrap().is_empty());
        let reply = search("(unclosed", "true", "false").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(reply.body.contains("regular expression"), "{}", reply.body);
        database.drop_postgres_database().await;
    }
}

fn zip_of(entries: &[(&str, &[u8])], folders: &[&str]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for folder in folders {
        writer.add_directory(*folder, options).unwrap();
    }
    for (name, bytes) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn unzip(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(archive)).unwrap();
    let mut entries = Vec::new();
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).unwrap();
        if entry.is_dir() {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        entries.push((entry.name().to_owned(), bytes));
    }
    entries.sort();
    entries
}

#[tokio::test]
async fn an_import_exports_again_byte_for_byte_and_a_bad_archive_changes_nothing() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let router = support::test_router(&database);
        let ada = new_user(&router, "ada").await;
        let png: &[u8] = &[
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0xff,
        ];
        let latin1: &[u8] = &[b'c', b'a', b'f', 0xe9];
        let original: Vec<(&str, &[u8])> = vec![
            ("Cargo.toml", b"[package]\nname = \"demo\"\n"),
            (
                "src/main.rs",
                b"fn main() {\r\n    println!(\"hi\");\r\n}\r\n",
            ),
            ("assets/logo.png", png),
            ("docs/legacy.txt", latin1),
            ("empty.txt", b""),
        ];
        let archive = zip_of(&original, &["assets/", "notes/"]);
        let (status, _, body) = support::send_for_bytes(
            &router,
            support::same_origin_request(
                "POST",
                "/api/projects/import?name=Imported",
                &ada,
                archive,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let project: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(project["name"], "Imported");
        let project_id = project["id"].as_str().unwrap();

        let tree = ok(
            &router,
            &ada,
            "/api/files/tree",
            &[("project_id", project_id)],
        )
        .await;
        let binary: Vec<(String, bool)> = tree["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|file| {
                (
                    file["path"].as_str().unwrap().to_owned(),
                    file["binary"].as_bool().unwrap(),
                )
            })
            .collect();
        assert!(binary.contains(&("assets/logo.png".to_owned(), true)));
        assert!(binary.contains(&("docs/legacy.txt".to_owned(), true)));
        assert!(binary.contains(&("src/main.rs".to_owned(), false)));
        assert!(
            tree["folders"]
                .as_array()
                .unwrap()
                .contains(&Value::from("notes"))
        );
        let logo_id = tree["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|file| file["path"] == "assets/logo.png")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let logo = ok(
            &router,
            &ada,
            "/api/files/open",
            &[("project_id", project_id), ("file_id", &logo_id)],
        )
        .await;
        assert_eq!(logo["binary"], true);
        assert_eq!(logo["content"], Value::Null);
        let reply = call(
            &router,
            &ada,
            "/api/files/save",
            &[
                ("project_id", project_id),
                ("file_id", &logo_id),
                ("base_version", "1"),
                ("content", "text"),
            ],
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);

        let (status, headers, exported) = support::send_for_bytes(
            &router,
            support::same_origin_request(
                "GET",
                &format!("/api/projects/{project_id}/export.zip"),
                &ada,
                Vec::new(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/zip");
        assert!(
            headers["content-disposition"]
                .to_str()
                .unwrap()
                .contains("Imported.zip")
        );
        let mut expected: Vec<(String, Vec<u8>)> = original
            .iter()
            .map(|(name, bytes)| ((*name).to_owned(), bytes.to_vec()))
            .collect();
        expected.sort();
        assert_eq!(unzip(&exported), expected);

        // A bad archive: every bad entry is named, and no project appears.
        let bad = zip_of(
            &[
                ("fine.txt", b"ok"),
                ("../../etc/cron.d/x", b"x"),
                ("/abs.txt", b"x"),
            ],
            &[],
        );
        let (status, _, body) = support::send_for_bytes(
            &router,
            support::same_origin_request("POST", "/api/projects/import?name=Bad", &ada, bad),
        )
        .await;
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body.contains("../../etc/cron.d/x") && body.contains("/abs.txt"),
            "{body}"
        );
        let (status, _, body) = support::send_for_bytes(
            &router,
            support::same_origin_request(
                "POST",
                "/api/projects/import?name=Junk",
                &ada,
                b"just text".to_vec(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&body).contains(".zip or .tar.gz"));
        let listed = ok(&router, &ada, "/api/projects/list", &[]).await;
        assert_eq!(listed.as_array().unwrap().len(), 1);
        database.drop_postgres_database().await;
    }
}

#[tokio::test]
async fn a_tar_gz_imports_and_limits_come_from_configuration() {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    let database = TestDatabase::migrated(db::Backend::Sqlite).await;
    let mut services = support::services_for(&database);
    services.projects.max_file_bytes = 100;
    let router = support::router_for(services);
    let ada = new_user(&router, "ada").await;

    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in [
        ("pkg/index.js", &b"module.exports = 1;\n"[..]),
        ("pkg/package.json", &b"{}"[..]),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, bytes).unwrap();
    }
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(&builder.into_inner().unwrap()).unwrap();
    let archive = encoder.finish().unwrap();
    let (status, _, body) = support::send_for_bytes(
        &router,
        support::same_origin_request("POST", "/api/projects/import?name=Tarball", &ada, archive),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));

    let project = new_project(&router, &ada, "Small files").await;
    let reply = call(
        &router,
        &ada,
        "/api/files/create",
        &[
            ("project_id", &project),
            ("path", "big.txt"),
            ("content", &"x".repeat(101)),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body.contains("limited to 100 bytes"),
        "{}",
        reply.body
    );
    let big = zip_of(&[("big.txt", &[b'y'; 500][..])], &[]);
    let (status, _, body) = support::send_for_bytes(
        &router,
        support::same_origin_request("POST", "/api/projects/import?name=Big", &ada, big),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("big.txt\\\" is larger than the 100 bytes"),
        "{body}"
    );
}

#[tokio::test]
async fn large_saves_and_imports_pass_up_to_the_configured_limits() {
    let database = TestDatabase::migrated(db::Backend::Sqlite).await;
    let mut services = support::services_for(&database);
    services.projects.max_file_bytes = 4 * 1024 * 1024;
    let router = support::router_for(services);
    let ada = new_user(&router, "ada").await;

    // 3 MB of bytes that do not compress: more than axum's own 2 MB default for a body.
    let mut noise = Vec::with_capacity(3 * 1024 * 1024);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    while noise.len() < 3 * 1024 * 1024 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.extend_from_slice(&state.to_le_bytes());
    }
    let archive = zip_of(&[("data/noise.bin", &noise)], &[]);
    assert!(archive.len() > 3 * 1024 * 1024);
    let (status, _, body) = support::send_for_bytes(
        &router,
        support::same_origin_request("POST", "/api/projects/import?name=Large", &ada, archive),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));

    // A 1 MiB file whose form encoding is three times larger still saves.
    let project = new_project(&router, &ada, "Big file").await;
    let file = ok(
        &router,
        &ada,
        "/api/files/create",
        &[
            ("project_id", &project),
            ("path", "big.txt"),
            ("content", ""),
        ],
    )
    .await;
    let content = "é!".repeat(1024 * 1024 / 3);
    let saved = ok(
        &router,
        &ada,
        "/api/files/save",
        &[
            ("project_id", &project),
            ("file_id", file["id"].as_str().unwrap()),
            ("base_version", "1"),
            ("content", &content),
        ],
    )
    .await;
    assert_eq!(saved["Saved"]["version"], 2);
}

#[tokio::test]
async fn a_cross_site_import_is_refused() {
    let database = TestDatabase::migrated(db::Backend::Sqlite).await;
    let router = support::test_router(&database);
    let ada = new_user(&router, "ada").await;
    let mut request = support::same_origin_request(
        "POST",
        "/api/projects/import?name=Evil",
        &ada,
        zip_of(&[("a.txt", b"a")], &[]),
    );
    request.headers_mut().insert(
        axum::http::header::ORIGIN,
        axum::http::HeaderValue::from_static("https://evil.example"),
    );
    let (status, _, _) = support::send_for_bytes(&router, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let listed = ok(&router, &ada, "/api/projects/list", &[]).await;
    assert!(listed.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_tar_gz_that_inflates_past_the_limits_or_holds_too_many_folders_is_refused() {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    let tar_gz = |entries: &[(tar::EntryType, String, usize)]| {
        let mut builder = tar::Builder::new(Vec::new());
        for (kind, name, size) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(*size as u64);
            header.set_mode(0o755);
            header.set_cksum();
            builder
                .append_data(&mut header, name, &vec![0u8; *size][..])
                .unwrap();
        }
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&builder.into_inner().unwrap()).unwrap();
        encoder.finish().unwrap()
    };
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let mut services = support::services_for(&database);
        services.projects.max_project_bytes = 100_000;
        services.projects.max_files = 5;
        let router = support::router_for(services);
        let ada = new_user(&router, "ada").await;
        let import = |archive: Vec<u8>| {
            let router = router.clone();
            let ada = ada.clone();
            async move {
                let (status, _, body) = support::send_for_bytes(
                    &router,
                    support::same_origin_request(
                        "POST",
                        "/api/projects/import?name=Refused",
                        &ada,
                        archive,
                    ),
                )
                .await;
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        // A folder and a pax header whose data (never stored) is 1 MB of zeros.
        let (status, body) = import(tar_gz(&[
            (tar::EntryType::Directory, "src/".into(), 1_000_000),
            (
                tar::EntryType::XGlobalHeader,
                "pax_global_header".into(),
                1_000_000,
            ),
            (tar::EntryType::Regular, "src/main.rs".into(), 10),
        ]))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("unpacks to more than 100000 bytes"), "{body}");
        // Six folders for a limit of five entries.
        let folders: Vec<(tar::EntryType, String, usize)> = (0..6)
            .map(|index| (tar::EntryType::Directory, format!("folder{index}/"), 0))
            .collect();
        let (status, body) = import(tar_gz(&folders)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("more than 5 files and folders"), "{body}");
        let listed = ok(&router, &ada, "/api/projects/list", &[]).await;
        assert!(listed.as_array().unwrap().is_empty());
        // Five entries, folders included, import.
        let (status, body) = import(tar_gz(&folders[..5])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}
