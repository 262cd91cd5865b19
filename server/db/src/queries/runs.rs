//! Runs and their events, written under a lease with a fencing token.
//!
//! Every write by a lease's holder is one conditional `UPDATE … WHERE lease_owner = me AND
//! fencing_token = mine` (inside the transaction that also inserts the events), so a holder that
//! lost its lease writes nothing: there is no read-then-write window. A claim bumps the token
//! with one conditional `UPDATE … WHERE the lease is free or expired`; of concurrent claimers
//! exactly one changes the row. Expiry is compared with the writing instance's clock: instances
//! need roughly synchronized clocks for leases to last as long as configured, while fencing keeps
//! the data safe whatever the clocks say.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use crate::ids::{RunId, UserId};
use crate::tables::run_events;
use crate::tables::runs::{self, RunState};
use crate::{Backend, Database, Error};

/// The Postgres channel on which a write to a run is announced (`<run id>:<last seq>`). It is a
/// hint to wake readers; the rows are the data.
pub const RUNS_CHANNEL: &str = "async_coder_runs";

/// What a new run is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRun {
    /// The kind of work (`chat_answer`, `agent_task`, …).
    pub kind: String,
    /// The user it works for, if any.
    pub owner_user_id: Option<UserId>,
    /// What it is about, as its kind understands it (a message's id, …).
    pub subject: Option<String>,
}

/// An event to append to a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRunEvent {
    /// The event's kind (`text`, `usage`, …).
    pub kind: String,
    /// The event as JSON text.
    pub payload: String,
}

/// A lease renewed by its holder's heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// When the lease ends unless renewed again.
    pub expires_at: DateTime<Utc>,
    /// Whether a stop of the run was asked for (on any instance).
    pub stop_requested: bool,
}

/// The lease a write is fenced by: the run, the instance holding it, and the token of its
/// claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunLease {
    pub run_id: RunId,
    pub instance: String,
    pub token: i64,
}

/// What is announced on [`RUNS_CHANNEL`]: a write (readers look at the rows) or a stop asked
/// for (the holder stops the run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunSignal {
    Written(RunNotice),
    StopRequested(RunId),
}

impl RunSignal {
    /// Reads a notification's payload (`<run id>:<last seq>` or `<run id>:stop`).
    pub fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(':') {
            Some((run_id, "stop")) => Some(Self::StopRequested(run_id.parse().ok()?)),
            _ => RunNotice::parse(payload).map(Self::Written),
        }
    }

    /// The notification's payload.
    pub fn payload(&self) -> String {
        match self {
            Self::Written(notice) => notice.payload(),
            Self::StopRequested(run_id) => format!("{run_id}:stop"),
        }
    }
}

/// A write to a run announced on [`RUNS_CHANNEL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunNotice {
    pub run_id: RunId,
    /// The number of the run's newest event after the write.
    pub last_seq: i64,
}

impl RunNotice {
    /// Reads a notification's payload (`<run id>:<last seq>`).
    pub fn parse(payload: &str) -> Option<Self> {
        let (run_id, last_seq) = payload.split_once(':')?;
        Some(Self {
            run_id: run_id.parse().ok()?,
            last_seq: last_seq.parse().ok()?,
        })
    }

    /// The notification's payload.
    pub fn payload(&self) -> String {
        format!("{}:{}", self.run_id, self.last_seq)
    }
}

/// What a fenced write does to the run besides appending its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Nothing: the run goes on. The lease must not have expired.
    None,
    /// The run ends in this state and its lease is cleared.
    Finish(RunState),
    /// The lease is handed back: any instance may claim the run at once.
    Release,
}

/// Now, at the precision Postgres keeps (microseconds), so that values read back compare equal.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// When a lease of `lease` taken at `now` ends.
fn expiry(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    let lease = chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::days(365));
    now + lease
}

fn count_of(events: &[NewRunEvent]) -> i64 {
    i64::try_from(events.len()).unwrap_or(i64::MAX)
}

/// The condition of a lease anyone may claim: nobody holds it, or it expired.
fn claimable(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(runs::Column::State.is_in([RunState::Queued, RunState::Running]))
        .add(
            Condition::any()
                .add(runs::Column::LeaseOwner.is_null())
                .add(runs::Column::LeaseExpiresAt.is_null())
                .add(runs::Column::LeaseExpiresAt.lt(now)),
        )
}

impl Database {
    /// Creates a run held by `instance` (fencing token 1, lease until now + `lease`), in state
    /// `running`.
    pub async fn create_run(
        &self,
        new: NewRun,
        instance: &str,
        lease: Duration,
    ) -> Result<runs::Model, Error> {
        let now = now();
        self.insert_run(runs::Model {
            id: RunId::new(),
            kind: new.kind,
            owner_user_id: new.owner_user_id,
            state: RunState::Running,
            subject: new.subject,
            lease_owner: Some(instance.to_owned()),
            lease_expires_at: Some(expiry(now, lease)),
            fencing_token: 1,
            last_seq: 0,
            stop_requested_at: None,
            created_at: now,
            updated_at: now,
        })
        .await
    }

    /// Creates a run nobody holds yet (state `queued`, fencing token 0): the first instance to
    /// [`claim_run`](Self::claim_run) it takes it.
    pub async fn queue_run(&self, new: NewRun) -> Result<runs::Model, Error> {
        let now = now();
        self.insert_run(runs::Model {
            id: RunId::new(),
            kind: new.kind,
            owner_user_id: new.owner_user_id,
            state: RunState::Queued,
            subject: new.subject,
            lease_owner: None,
            lease_expires_at: None,
            fencing_token: 0,
            last_seq: 0,
            stop_requested_at: None,
            created_at: now,
            updated_at: now,
        })
        .await
    }

    async fn insert_run(&self, run: runs::Model) -> Result<runs::Model, Error> {
        runs::Entity::insert(runs::ActiveModel {
            id: Set(run.id),
            kind: Set(run.kind.clone()),
            owner_user_id: Set(run.owner_user_id),
            state: Set(run.state),
            subject: Set(run.subject.clone()),
            lease_owner: Set(run.lease_owner.clone()),
            lease_expires_at: Set(run.lease_expires_at),
            fencing_token: Set(run.fencing_token),
            last_seq: Set(run.last_seq),
            stop_requested_at: Set(run.stop_requested_at),
            created_at: Set(run.created_at),
            updated_at: Set(run.updated_at),
        })
        .exec_without_returning(self.connection())
        .await?;
        Ok(run)
    }

    /// Takes the run for `instance` if nobody holds its lease or the lease expired, and it has
    /// not ended: the fencing token is bumped, the state becomes `running`. Returns the run as
    /// claimed (with its new token), or `None` when it was not claimable (held, ended, missing).
    /// Of concurrent claimers exactly one gets the run.
    pub async fn claim_run(
        &self,
        run_id: RunId,
        instance: &str,
        lease: Duration,
    ) -> Result<Option<runs::Model>, Error> {
        let transaction = self.begin_write().await?;
        let now = now();
        let claimed = runs::Entity::update_many()
            .col_expr(
                runs::Column::FencingToken,
                Expr::col(runs::Column::FencingToken).add(1),
            )
            .col_expr(runs::Column::LeaseOwner, Expr::value(instance.to_owned()))
            .col_expr(
                runs::Column::LeaseExpiresAt,
                Expr::value(expiry(now, lease)),
            )
            .col_expr(runs::Column::State, Expr::value(RunState::Running))
            .col_expr(runs::Column::UpdatedAt, Expr::value(now))
            .filter(runs::Column::Id.eq(run_id))
            .filter(claimable(now))
            .exec(&transaction)
            .await?;
        if claimed.rows_affected == 0 {
            transaction.rollback().await?;
            return Ok(None);
        }
        // Read inside the transaction: the row stays locked until the commit, so the token read
        // is the one this claim set.
        let run = runs::Entity::find_by_id(run_id).one(&transaction).await?;
        transaction.commit().await?;
        Ok(run)
    }

    /// Extends the lease of `instance` (holding `token`) to now + `lease`. Returns the new
    /// expiry and whether a stop was asked for (on another instance), or [`Error::LeaseLost`]
    /// when the run is no longer held with this token (claimed by another, released, ended).
    pub async fn heartbeat_run(
        &self,
        run_id: RunId,
        instance: &str,
        token: i64,
        lease: Duration,
    ) -> Result<Heartbeat, Error> {
        let now = now();
        let expires_at = expiry(now, lease);
        let renewed = runs::Entity::update_many()
            .col_expr(runs::Column::LeaseExpiresAt, Expr::value(expires_at))
            .col_expr(runs::Column::UpdatedAt, Expr::value(now))
            .filter(runs::Column::Id.eq(run_id))
            .filter(runs::Column::LeaseOwner.eq(instance))
            .filter(runs::Column::FencingToken.eq(token))
            .filter(runs::Column::State.eq(RunState::Running))
            .exec(self.connection())
            .await?;
        if renewed.rows_affected == 0 {
            return Err(Error::LeaseLost);
        }
        Ok(Heartbeat {
            expires_at,
            stop_requested: self.run_stop_requested(run_id).await?,
        })
    }

    /// Whether a stop of the run was asked for.
    pub async fn run_stop_requested(&self, run_id: RunId) -> Result<bool, Error> {
        let requested: Option<Option<DateTime<Utc>>> = runs::Entity::find_by_id(run_id)
            .select_only()
            .column(runs::Column::StopRequestedAt)
            .into_tuple()
            .one(self.connection())
            .await?;
        Ok(requested.flatten().is_some())
    }

    /// Asks whichever instance holds the run to stop it: records the request on the row and,
    /// on Postgres, announces it on [`RUNS_CHANNEL`] (`<run id>:stop`) when it commits; the
    /// holder also sees it at its next heartbeat. Returns `false` when the run has ended (or
    /// does not exist): there is nothing to stop. Asking twice is asking once.
    pub async fn request_run_stop(&self, run_id: RunId) -> Result<bool, Error> {
        let transaction = self.begin_write().await?;
        let now = now();
        let requested = runs::Entity::update_many()
            .col_expr(runs::Column::StopRequestedAt, Expr::value(now))
            .filter(runs::Column::Id.eq(run_id))
            .filter(runs::Column::State.is_in([RunState::Queued, RunState::Running]))
            .filter(runs::Column::StopRequestedAt.is_null())
            .exec(&transaction)
            .await?;
        if requested.rows_affected == 0 {
            transaction.rollback().await?;
            let run = self.run(run_id).await?;
            return Ok(run.is_some_and(|run| !run.state.is_terminal()));
        }
        signal(
            &transaction,
            self.backend(),
            RunSignal::StopRequested(run_id),
        )
        .await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Appends `events` to the run, numbered from its `last_seq + 1`, if `instance` holds its
    /// lease with `token` and the lease has not expired; otherwise [`Error::LeaseLost`] and
    /// nothing is written. Returns the run's new `last_seq`. On Postgres the write is announced
    /// on [`RUNS_CHANNEL`] when it commits.
    pub async fn append_run_events(
        &self,
        run_id: RunId,
        instance: &str,
        token: i64,
        events: &[NewRunEvent],
    ) -> Result<i64, Error> {
        self.write_fenced(run_id, instance, token, events, Ending::None)
            .await
    }

    /// Appends the last `events` and ends the run in `state` (`finished`, `interrupted` or
    /// `failed`), clearing its lease, if `instance` still holds it with `token` (an expired
    /// lease nobody claimed yet is still held); otherwise [`Error::LeaseLost`] and nothing is
    /// written. Returns the run's `last_seq`.
    pub async fn finish_run(
        &self,
        run_id: RunId,
        instance: &str,
        token: i64,
        state: RunState,
        events: &[NewRunEvent],
    ) -> Result<i64, Error> {
        if !state.is_terminal() {
            return Err(Error::Query(sea_orm::DbErr::Custom(format!(
                "a run cannot finish in state {state:?}"
            ))));
        }
        self.write_fenced(run_id, instance, token, events, Ending::Finish(state))
            .await
    }

    /// Appends `events` and hands the lease back (graceful shutdown): the run stays `running`
    /// and any instance may claim it at once. [`Error::LeaseLost`] when `instance` no longer
    /// holds it with `token`.
    pub async fn release_run(
        &self,
        run_id: RunId,
        instance: &str,
        token: i64,
        events: &[NewRunEvent],
    ) -> Result<i64, Error> {
        self.write_fenced(run_id, instance, token, events, Ending::Release)
            .await
    }

    /// One fenced write: the conditional update of the run first (which locks its row and
    /// reserves the numbers), then the events, then the announcement, in one transaction.
    async fn write_fenced(
        &self,
        run_id: RunId,
        instance: &str,
        token: i64,
        events: &[NewRunEvent],
        ending: Ending,
    ) -> Result<i64, Error> {
        let count = count_of(events);
        let transaction = self.begin_write().await?;
        let now = now();
        let mut update = runs::Entity::update_many()
            .col_expr(
                runs::Column::LastSeq,
                Expr::col(runs::Column::LastSeq).add(count),
            )
            .col_expr(runs::Column::UpdatedAt, Expr::value(now))
            .filter(runs::Column::Id.eq(run_id))
            .filter(runs::Column::LeaseOwner.eq(instance))
            .filter(runs::Column::FencingToken.eq(token))
            .filter(runs::Column::State.eq(RunState::Running));
        update = match ending {
            Ending::None => update.filter(runs::Column::LeaseExpiresAt.gt(now)),
            Ending::Finish(state) => update
                .col_expr(runs::Column::State, Expr::value(state))
                .col_expr(
                    runs::Column::LeaseOwner,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    runs::Column::LeaseExpiresAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                ),
            Ending::Release => update
                .col_expr(
                    runs::Column::LeaseOwner,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    runs::Column::LeaseExpiresAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                ),
        };
        let written = update.exec(&transaction).await?;
        if written.rows_affected == 0 {
            transaction.rollback().await?;
            return Err(Error::LeaseLost);
        }
        let last_seq: Option<i64> = runs::Entity::find_by_id(run_id)
            .select_only()
            .column(runs::Column::LastSeq)
            .into_tuple()
            .one(&transaction)
            .await?;
        let last_seq = last_seq.ok_or(Error::LeaseLost)?;
        if !events.is_empty() {
            let first_seq = last_seq - count + 1;
            let rows = events
                .iter()
                .zip(first_seq..)
                .map(|(event, seq)| run_events::ActiveModel {
                    run_id: Set(run_id),
                    seq: Set(seq),
                    kind: Set(event.kind.clone()),
                    payload: Set(event.payload.clone()),
                    created_at: Set(now),
                });
            run_events::Entity::insert_many(rows)
                .exec_without_returning(&transaction)
                .await?;
        }
        if !events.is_empty() || ending != Ending::None {
            let notice = RunNotice { run_id, last_seq };
            signal(&transaction, self.backend(), RunSignal::Written(notice)).await?;
        }
        transaction.commit().await?;
        Ok(last_seq)
    }

    /// The run, if it exists.
    pub async fn run(&self, run_id: RunId) -> Result<Option<runs::Model>, Error> {
        Ok(runs::Entity::find_by_id(run_id)
            .one(self.connection())
            .await?)
    }

    /// The run's events numbered after `after_seq`, in order, at most `limit`.
    pub async fn run_events_after(
        &self,
        run_id: RunId,
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<run_events::Model>, Error> {
        Ok(run_events::Entity::find()
            .filter(run_events::Column::RunId.eq(run_id))
            .filter(run_events::Column::Seq.gt(after_seq))
            .order_by_asc(run_events::Column::Seq)
            .limit(limit)
            .all(self.connection())
            .await?)
    }

    /// The newest run of `kind` about `subject` (a message answered again has several).
    pub async fn latest_run_about(
        &self,
        kind: &str,
        subject: &str,
    ) -> Result<Option<runs::Model>, Error> {
        Ok(runs::Entity::find()
            .filter(runs::Column::Kind.eq(kind))
            .filter(runs::Column::Subject.eq(subject))
            .order_by_desc(runs::Column::CreatedAt)
            .order_by_desc(runs::Column::Id)
            .one(self.connection())
            .await?)
    }

    /// Which of `subjects` some run of `kind` is about.
    pub async fn subjects_with_runs(
        &self,
        kind: &str,
        subjects: &[String],
    ) -> Result<std::collections::HashSet<String>, Error> {
        let mut found = std::collections::HashSet::new();
        // In slices, so that no statement carries too many parameters.
        for chunk in subjects.chunks(500) {
            let rows: Vec<Option<String>> = runs::Entity::find()
                .select_only()
                .column(runs::Column::Subject)
                .filter(runs::Column::Kind.eq(kind))
                .filter(runs::Column::Subject.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(self.connection())
                .await?;
            found.extend(rows.into_iter().flatten());
        }
        Ok(found)
    }

    /// Runs of `kind` that have not ended and that anyone may claim now (nobody holds them, or
    /// their lease expired), oldest first, at most `limit`: what recovery looks at.
    pub async fn claimable_runs(&self, kind: &str, limit: u64) -> Result<Vec<runs::Model>, Error> {
        Ok(runs::Entity::find()
            .filter(runs::Column::Kind.eq(kind))
            .filter(claimable(now()))
            .order_by_asc(runs::Column::Id)
            .limit(limit)
            .all(self.connection())
            .await?)
    }

    /// Listens on [`RUNS_CHANNEL`] (Postgres only; `None` on SQLite, where one process writes
    /// and reads). The listener holds one connection of the pool.
    pub async fn listen_to_runs(&self) -> Result<Option<RunListener>, Error> {
        if self.backend() != Backend::Postgres {
            return Ok(None);
        }
        let pool = self.connection().get_postgres_connection_pool();
        let mut listener = PgListener::connect_with(pool)
            .await
            .map_err(Error::Listen)?;
        listener.listen(RUNS_CHANNEL).await.map_err(Error::Listen)?;
        Ok(Some(RunListener { listener }))
    }
}

/// Announces a write or a stop request on Postgres (delivered when the transaction commits);
/// nothing on SQLite.
async fn signal(
    transaction: &DatabaseTransaction,
    backend: Backend,
    signal: RunSignal,
) -> Result<(), Error> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    transaction
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [RUNS_CHANNEL.into(), signal.payload().into()],
        ))
        .await?;
    Ok(())
}

/// Notices of writes to runs and of stops asked for, from Postgres's LISTEN. They are hints: a
/// reader always reads the rows after the last number it has, a holder also sees a stop at its
/// next heartbeat.
pub struct RunListener {
    listener: PgListener,
}

impl std::fmt::Debug for RunListener {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RunListener")
            .finish_non_exhaustive()
    }
}

impl RunListener {
    /// The next notice. `Ok(None)` when the connection was lost (it is opened again at once):
    /// notices may have been missed, so every reader should look at its rows again.
    pub async fn next(&mut self) -> Result<Option<RunSignal>, Error> {
        loop {
            match self.listener.try_recv().await.map_err(Error::Listen)? {
                None => return Ok(None),
                Some(notification) => {
                    if let Some(signal) = RunSignal::parse(notification.payload()) {
                        return Ok(Some(signal));
                    }
                }
            }
        }
    }
}

/// Checks, inside `transaction`, that `lease` still holds its run (the same conditional update
/// as every fenced write, so the row stays locked until the commit and no claim can come in
/// between): [`Error::LeaseLost`] otherwise, and the caller rolls back.
pub(crate) async fn hold_lease(
    transaction: &DatabaseTransaction,
    lease: &RunLease,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let held = runs::Entity::update_many()
        .col_expr(runs::Column::UpdatedAt, Expr::value(now))
        .filter(runs::Column::Id.eq(lease.run_id))
        .filter(runs::Column::LeaseOwner.eq(lease.instance.as_str()))
        .filter(runs::Column::FencingToken.eq(lease.token))
        .filter(runs::Column::State.eq(RunState::Running))
        .exec(transaction)
        .await?;
    if held.rows_affected == 0 {
        return Err(Error::LeaseLost);
    }
    Ok(())
}

/// Removing ended runs after the retention.
impl Database {
    /// Deletes the runs that ended before `cutoff` (with their events), at most `batch` runs
    /// per transaction, until none is left; runs still going are never deleted. Idempotent:
    /// two instances deleting at once delete each run once between them. Returns how many
    /// runs this call deleted.
    pub async fn delete_runs_ended_before(
        &self,
        cutoff: DateTime<Utc>,
        batch: u64,
    ) -> Result<u64, Error> {
        let ended = || {
            Condition::all()
                .add(runs::Column::State.is_in([
                    RunState::Finished,
                    RunState::Interrupted,
                    RunState::Failed,
                ]))
                .add(runs::Column::UpdatedAt.lt(cutoff))
        };
        let batch = Ord::max(batch, 1);
        let mut deleted = 0;
        loop {
            let old: Vec<RunId> = runs::Entity::find()
                .select_only()
                .column(runs::Column::Id)
                .filter(ended())
                .order_by_asc(runs::Column::UpdatedAt)
                .limit(batch)
                .into_tuple()
                .all(self.connection())
                .await?;
            if old.is_empty() {
                return Ok(deleted);
            }
            let found = u64::try_from(old.len()).unwrap_or(u64::MAX);
            let transaction = self.begin_write().await?;
            run_events::Entity::delete_many()
                .filter(run_events::Column::RunId.is_in(old.clone()))
                .exec(&transaction)
                .await?;
            let removed = runs::Entity::delete_many()
                .filter(runs::Column::Id.is_in(old))
                .filter(ended())
                .exec(&transaction)
                .await?;
            transaction.commit().await?;
            deleted += removed.rows_affected;
            if found < batch {
                return Ok(deleted);
            }
        }
    }
}

/// Listing and pruning runs by what they are about (a project's command runs).
impl Database {
    /// The newest runs of `kind` about `subject`, newest first, at most `limit`.
    pub async fn runs_about(
        &self,
        kind: &str,
        subject: &str,
        limit: u64,
    ) -> Result<Vec<runs::Model>, Error> {
        Ok(runs::Entity::find()
            .filter(runs::Column::Kind.eq(kind))
            .filter(runs::Column::Subject.eq(subject))
            .order_by_desc(runs::Column::CreatedAt)
            .order_by_desc(runs::Column::Id)
            .limit(limit)
            .all(self.connection())
            .await?)
    }

    /// Deletes the ended runs of `kind` about `subject` beyond the newest `keep` (with their
    /// events); runs still going are never deleted. Returns how many were deleted.
    pub async fn prune_runs_about(
        &self,
        kind: &str,
        subject: &str,
        keep: u64,
    ) -> Result<u64, Error> {
        let old: Vec<RunId> = runs::Entity::find()
            .select_only()
            .column(runs::Column::Id)
            .filter(runs::Column::Kind.eq(kind))
            .filter(runs::Column::Subject.eq(subject))
            .filter(runs::Column::State.is_in([
                RunState::Finished,
                RunState::Interrupted,
                RunState::Failed,
            ]))
            .order_by_desc(runs::Column::CreatedAt)
            .order_by_desc(runs::Column::Id)
            .offset(keep)
            .into_tuple()
            .all(self.connection())
            .await?;
        if old.is_empty() {
            return Ok(0);
        }
        let transaction = self.begin_write().await?;
        run_events::Entity::delete_many()
            .filter(run_events::Column::RunId.is_in(old.clone()))
            .exec(&transaction)
            .await?;
        let deleted = runs::Entity::delete_many()
            .filter(runs::Column::Id.is_in(old))
            .exec(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(deleted.rows_affected)
    }

    /// The run's events of the given kinds, in order (a command run's `started` and
    /// `finished`).
    pub async fn run_events_of_kinds(
        &self,
        run_id: RunId,
        kinds: &[&str],
    ) -> Result<Vec<run_events::Model>, Error> {
        Ok(run_events::Entity::find()
            .filter(run_events::Column::RunId.eq(run_id))
            .filter(run_events::Column::Kind.is_in(kinds.iter().copied()))
            .order_by_asc(run_events::Column::Seq)
            .all(self.connection())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip() {
        let notice = RunNotice {
            run_id: RunId::new(),
            last_seq: 42,
        };
        assert_eq!(RunNotice::parse(&notice.payload()), Some(notice));
        assert_eq!(RunNotice::parse("nonsense"), None);
        assert_eq!(RunNotice::parse("not-a-uuid:3"), None);
    }
}
