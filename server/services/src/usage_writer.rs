//! Writes `api_usage` rows in the background, several per statement.
//!
//! A call's answer never waits for its row. Rows gather in memory for [`WINDOW`] after the
//! first of them (or until [`BATCH`] are there, or someone asks for a flush) and are then
//! inserted together. One call at a time, a write per call used to cost more CPU than the rest
//! of the call: SQLite's commit on a thread of its own, and waking the writer for every row
//! made the runtime wake a second worker for every request. Now the writer is woken once per
//! window, not once per row.
//!
//! Anyone about to read usage calls [`UsageWriter::flush`] first, and so does the server before
//! it closes the database at shutdown; a process killed outright loses at most the last window's
//! rows.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, oneshot};

/// How long a row waits for others to share its write.
pub const WINDOW: Duration = Duration::from_millis(500);

/// How many rows go into one statement; this many waiting cut the window short.
pub const BATCH: usize = 500;

type Row = (db::NewUsage, DateTime<Utc>);

#[derive(Debug, Default)]
struct Pending {
    rows: Vec<Row>,
    /// Flushes asked for: each is answered once the rows queued before it are written.
    flushes: Vec<oneshot::Sender<()>>,
    /// The writer task has ended (it panicked): a flush returns at once.
    stopped: bool,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// The writer's alarm: the first row of a window, a full batch, a flush.
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The queue in front of the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct UsageWriter {
    shared: Arc<Shared>,
}

impl UsageWriter {
    /// Starts the writer task (on the current Tokio runtime).
    pub fn start(database: db::Database) -> Self {
        let shared = Arc::new(Shared::default());
        tokio::spawn(write_rows(database, shared.clone(), WINDOW));
        Self { shared }
    }

    /// Queues a row; it is written within [`WINDOW`].
    pub fn push(&self, row: db::NewUsage, at: DateTime<Utc>) {
        let wake = {
            let mut pending = self.shared.lock();
            pending.rows.push((row, at));
            pending.rows.len() == 1 || pending.rows.len() == BATCH
        };
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// Returns once every row queued before this call is in the database (or its write failed
    /// and was logged).
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        {
            let mut pending = self.shared.lock();
            if pending.stopped {
                tracing::error!("the usage writer has stopped; queued usage rows are not written");
                return;
            }
            pending.flushes.push(done);
        }
        self.shared.wake.notify_one();
        if written.await.is_err() {
            tracing::error!("the usage writer stopped before writing what was queued");
        }
    }
}

/// Marks the writer stopped when its task ends, however it ends, and lets waiting flushes go.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        let mut pending = self.0.lock();
        pending.stopped = true;
        // Dropping the senders answers every waiting flush.
        pending.flushes.clear();
    }
}

async fn write_rows(database: db::Database, shared: Arc<Shared>, window: Duration) {
    let _stop = StopGuard(shared.clone());
    loop {
        shared.wake.notified().await;
        let urgent = {
            let pending = shared.lock();
            !pending.flushes.is_empty() || pending.rows.len() >= BATCH
        };
        if !urgent {
            // The window; a full batch or a flush ends it early (that is the `Ok`).
            tokio::time::timeout(window, shared.wake.notified())
                .await
                .ok();
        }
        let (rows, flushes) = {
            let mut pending = shared.lock();
            (
                std::mem::take(&mut pending.rows),
                std::mem::take(&mut pending.flushes),
            )
        };
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            write_batch(&database, rows.by_ref().take(BATCH).collect()).await;
        }
        for done in flushes {
            if done.send(()).is_err() {
                tracing::debug!("a usage flush was no longer awaited");
            }
        }
    }
}

/// Adds the batch's tokens to the users' monthly plan counters (those that exist: a counter is
/// seeded from `api_usage` when a limited plan first needs it).
async fn count_tokens(database: &db::Database, rows: &[Row]) {
    let mut totals: std::collections::HashMap<(db::ids::UserId, String), u64> =
        std::collections::HashMap::new();
    for (row, at) in rows {
        let tokens = row.input_tokens + row.output_tokens;
        if tokens > 0 {
            *totals
                .entry((row.user_id, crate::policy::tokens_counter(*at)))
                .or_default() += tokens;
        }
    }
    for ((user_id, counter), tokens) in totals {
        if let Err(error) = database
            .add_to_plan_counter(user_id, &counter, tokens)
            .await
        {
            tracing::error!(%error, "counting tokens against the plan failed");
        }
    }
}

async fn write_batch(database: &db::Database, rows: Vec<Row>) {
    insert_rows(database, rows.clone()).await;
    // After the rows: a counter seeded in between counts them twice (a limit met a little
    // early), never not at all.
    count_tokens(database, &rows).await;
}

async fn insert_rows(database: &db::Database, rows: Vec<Row>) {
    if let Err(error) = database.record_usage_batch(rows.clone()).await {
        // One row can spoil a batch (its conversation deleted meanwhile): write them one by
        // one, and keep a row whose chat message is gone without that link.
        tracing::warn!(%error, count = rows.len(), "a usage batch failed; writing its rows one by one");
        for (row, at) in rows {
            let unlinked = db::NewUsage {
                conversation_id: None,
                message_id: None,
                ..row.clone()
            };
            if database.record_usage(row, at).await.is_err()
                && let Err(error) = database.record_usage(unlinked, at).await
            {
                tracing::error!(%error, "recording AI usage failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Instant;

    use chrono::{Duration as Days, Utc};
    use db::testing::TestDatabase;
    use db::{Backend, NewUsage, NewUser};

    use super::*;

    async fn database_with_user() -> (TestDatabase, db::ids::UserId) {
        let test_database = TestDatabase::migrated(Backend::Sqlite).await;
        let user = test_database
            .database
            .create_user(
                NewUser {
                    email: "writer@example.com".to_owned(),
                    name: "Writer".to_owned(),
                    password_hash: "not a hash".to_owned(),
                },
                Utc::now(),
            )
            .await
            .unwrap();
        (test_database, user.id)
    }

    fn row(user_id: db::ids::UserId, input_tokens: u64) -> NewUsage {
        NewUsage {
            user_id,
            provider: "openai".to_owned(),
            model: "gpt-4o-mini".to_owned(),
            mode: "chat".to_owned(),
            input_tokens,
            output_tokens: 1,
            outcome: db::UsageOutcome::Ok,
            ..NewUsage::default()
        }
    }

    async fn written(database: &db::Database, user_id: db::ids::UserId) -> u64 {
        database
            .usage_since(user_id, Utc::now() - Days::days(1))
            .await
            .unwrap()
            .requests
    }

    fn writer(database: &db::Database, window: Duration) -> UsageWriter {
        let shared = Arc::new(Shared::default());
        tokio::spawn(write_rows(database.clone(), shared.clone(), window));
        UsageWriter { shared }
    }

    #[tokio::test]
    async fn rows_wait_for_the_window_and_a_flush_writes_them_at_once() {
        let (test_database, user_id) = database_with_user().await;
        let database = &test_database.database;
        let writer = writer(database, Duration::from_secs(3600));
        for tokens in 1..=3 {
            writer.push(row(user_id, tokens), Utc::now());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            written(database, user_id).await,
            0,
            "written before the window ended"
        );
        writer.flush().await;
        assert_eq!(written(database, user_id).await, 3);
        // A flush with nothing queued returns too.
        writer.flush().await;
        assert_eq!(written(database, user_id).await, 3);
    }

    #[tokio::test]
    async fn rows_are_written_when_their_window_ends() {
        let (test_database, user_id) = database_with_user().await;
        let database = &test_database.database;
        let writer = writer(database, Duration::from_millis(50));
        for round in 1..=2 {
            writer.push(row(user_id, 10), Utc::now());
            let started = Instant::now();
            while written(database, user_id).await < round {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "row {round} was never written"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    #[tokio::test]
    async fn a_flush_does_not_wait_for_a_writer_that_has_stopped() {
        let (test_database, user_id) = database_with_user().await;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(write_rows(
            test_database.database.clone(),
            shared.clone(),
            Duration::from_secs(3600),
        ));
        let writer = UsageWriter { shared };
        writer.push(row(user_id, 1), Utc::now());
        tokio::time::sleep(Duration::from_millis(50)).await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        tokio::time::timeout(Duration::from_secs(5), writer.flush())
            .await
            .expect("a flush waited for a writer that had stopped");
    }

    #[tokio::test]
    async fn a_full_batch_does_not_wait_for_the_window() {
        let (test_database, user_id) = database_with_user().await;
        let database = &test_database.database;
        let writer = writer(database, Duration::from_secs(3600));
        for _ in 0..BATCH + 1 {
            writer.push(row(user_id, 1), Utc::now());
        }
        let started = Instant::now();
        while written(database, user_id).await < BATCH as u64 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "a full batch waited for the window"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        writer.flush().await;
        assert_eq!(written(database, user_id).await, BATCH as u64 + 1);
    }
}
