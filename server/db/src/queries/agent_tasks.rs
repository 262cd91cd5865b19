//! Async agent tasks, their journals and their budgets.
//!
//! Every read a user asks for takes the owner's id and filters on it; the unscoped reads are for
//! the worker that runs a task (it found the task through its run). Budgets are reserved with
//! one conditional `UPDATE` (exact across instances, like the plan counters); usage is recorded
//! once per key (an insert that does nothing when the key exists decides whether the totals
//! grow), in the same transaction.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::ids::{AgentTaskId, ProjectId, RunId, UserId};
use crate::tables::agent_tasks::{self, TaskState};
use crate::tables::{agent_journal, agent_usage};
use crate::{Database, Error};

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Now, at the precision Postgres keeps (microseconds).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A task's budget limits (`None`: no limit of that kind).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskLimits {
    pub steps: Option<u64>,
    pub tokens: Option<u64>,
    pub cost_micros: Option<u64>,
    pub wall_time_seconds: Option<u64>,
}

/// What a new task is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAgentTask {
    pub project_id: ProjectId,
    pub owner_user_id: UserId,
    pub title: String,
    pub instructions: String,
    /// The base it starts from (JSON, as the services crate writes it).
    pub base: String,
    pub limits: TaskLimits,
}

/// The limit a reservation ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskLimit {
    Steps,
    Tokens,
    Cost,
    WallTime,
}

/// What a step reservation found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepReservation {
    /// The step may run (reserved now, or reserved before: a step counts once).
    Reserved,
    /// A limit is reached; nothing changed.
    Exceeded(TaskLimit),
    /// There is no such task.
    Missing,
}

/// A change of a task's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStateChange {
    pub state: TaskState,
    /// Why it paused (JSON), for `paused`.
    pub pause_reason: Option<String>,
    /// The agent's summary, for `finished`.
    pub summary: Option<String>,
}

impl Database {
    /// Creates a task in state `running`, with nothing used yet.
    pub async fn create_agent_task(&self, new: NewAgentTask) -> Result<agent_tasks::Model, Error> {
        let now = now();
        let task = agent_tasks::Model {
            id: AgentTaskId::new(),
            project_id: new.project_id,
            owner_user_id: new.owner_user_id,
            run_id: None,
            title: new.title,
            instructions: new.instructions,
            state: TaskState::Running,
            pause_reason: None,
            summary: None,
            base: new.base,
            step_limit: new.limits.steps.map(signed),
            token_limit: new.limits.tokens.map(signed),
            cost_limit_micros: new.limits.cost_micros.map(signed),
            wall_time_limit_seconds: new.limits.wall_time_seconds.map(signed),
            steps_used: 0,
            last_step: 0,
            tokens_used: 0,
            cost_used_micros: 0,
            created_at: now,
            updated_at: now,
            ended_at: None,
        };
        agent_tasks::Entity::insert(agent_tasks::ActiveModel {
            id: Set(task.id),
            project_id: Set(task.project_id),
            owner_user_id: Set(task.owner_user_id),
            run_id: Set(task.run_id),
            title: Set(task.title.clone()),
            instructions: Set(task.instructions.clone()),
            state: Set(task.state),
            pause_reason: Set(None),
            summary: Set(None),
            base: Set(task.base.clone()),
            step_limit: Set(task.step_limit),
            token_limit: Set(task.token_limit),
            cost_limit_micros: Set(task.cost_limit_micros),
            wall_time_limit_seconds: Set(task.wall_time_limit_seconds),
            steps_used: Set(0),
            last_step: Set(0),
            tokens_used: Set(0),
            cost_used_micros: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ended_at: Set(None),
        })
        .exec_without_returning(self.connection())
        .await?;
        Ok(task)
    }

    /// The task `id` if `owner` owns it.
    pub async fn agent_task_of(
        &self,
        owner: UserId,
        id: AgentTaskId,
    ) -> Result<Option<agent_tasks::Model>, Error> {
        Ok(agent_tasks::Entity::find_by_id(id)
            .filter(agent_tasks::Column::OwnerUserId.eq(owner))
            .one(self.connection())
            .await?)
    }

    /// The task `id`, whoever owns it (for the worker running it).
    pub async fn agent_task(&self, id: AgentTaskId) -> Result<Option<agent_tasks::Model>, Error> {
        Ok(agent_tasks::Entity::find_by_id(id)
            .one(self.connection())
            .await?)
    }

    /// The owner's tasks, newest first, optionally of one project.
    pub async fn agent_tasks_of(
        &self,
        owner: UserId,
        project: Option<ProjectId>,
    ) -> Result<Vec<agent_tasks::Model>, Error> {
        let mut query =
            agent_tasks::Entity::find().filter(agent_tasks::Column::OwnerUserId.eq(owner));
        if let Some(project) = project {
            query = query.filter(agent_tasks::Column::ProjectId.eq(project));
        }
        Ok(query
            .order_by_desc(agent_tasks::Column::CreatedAt)
            .order_by_desc(agent_tasks::Column::Id)
            .all(self.connection())
            .await?)
    }

    /// Records the run that carries the task now.
    pub async fn set_agent_task_run(&self, id: AgentTaskId, run: RunId) -> Result<(), Error> {
        agent_tasks::Entity::update_many()
            .col_expr(agent_tasks::Column::RunId, Expr::value(run))
            .col_expr(agent_tasks::Column::UpdatedAt, Expr::value(now()))
            .filter(agent_tasks::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Moves the task to a new state, only from one of the states in `only_from` (all when
    /// empty), in one conditional `UPDATE`: a late writer cannot undo a cancel. Returns whether
    /// the row changed.
    pub async fn set_agent_task_state(
        &self,
        id: AgentTaskId,
        change: TaskStateChange,
        only_from: &[TaskState],
    ) -> Result<bool, Error> {
        let now = now();
        let ended = matches!(
            change.state,
            TaskState::Finished | TaskState::Cancelled | TaskState::Failed
        );
        let mut update = agent_tasks::Entity::update_many()
            .col_expr(agent_tasks::Column::State, Expr::value(change.state))
            .col_expr(
                agent_tasks::Column::PauseReason,
                Expr::value(change.pause_reason),
            )
            .col_expr(agent_tasks::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                agent_tasks::Column::EndedAt,
                Expr::value(ended.then_some(now)),
            )
            .filter(agent_tasks::Column::Id.eq(id));
        if let Some(summary) = change.summary {
            update = update.col_expr(agent_tasks::Column::Summary, Expr::value(summary));
        }
        if !only_from.is_empty() {
            update = update.filter(agent_tasks::Column::State.is_in(only_from.iter().copied()));
        }
        Ok(update.exec(self.connection()).await?.rows_affected > 0)
    }

    /// Replaces the task's limits (continuing with more budget).
    pub async fn set_agent_task_limits(
        &self,
        id: AgentTaskId,
        limits: TaskLimits,
    ) -> Result<(), Error> {
        agent_tasks::Entity::update_many()
            .col_expr(
                agent_tasks::Column::StepLimit,
                Expr::value(limits.steps.map(signed)),
            )
            .col_expr(
                agent_tasks::Column::TokenLimit,
                Expr::value(limits.tokens.map(signed)),
            )
            .col_expr(
                agent_tasks::Column::CostLimitMicros,
                Expr::value(limits.cost_micros.map(signed)),
            )
            .col_expr(
                agent_tasks::Column::WallTimeLimitSeconds,
                Expr::value(limits.wall_time_seconds.map(signed)),
            )
            .col_expr(agent_tasks::Column::UpdatedAt, Expr::value(now()))
            .filter(agent_tasks::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// The task's journal entries (JSON), in order.
    pub async fn agent_journal(&self, task: AgentTaskId) -> Result<Vec<String>, Error> {
        Ok(agent_journal::Entity::find()
            .filter(agent_journal::Column::TaskId.eq(task))
            .order_by_asc(agent_journal::Column::Seq)
            .all(self.connection())
            .await?
            .into_iter()
            .map(|row| row.entry)
            .collect())
    }

    /// The task's journal entries numbered after `after`, at most `limit`: `(seq, entry)`.
    pub async fn agent_journal_after(
        &self,
        task: AgentTaskId,
        after: i64,
        limit: u64,
    ) -> Result<Vec<(i64, String)>, Error> {
        Ok(agent_journal::Entity::find()
            .filter(agent_journal::Column::TaskId.eq(task))
            .filter(agent_journal::Column::Seq.gt(after))
            .order_by_asc(agent_journal::Column::Seq)
            .limit(limit)
            .all(self.connection())
            .await?
            .into_iter()
            .map(|row| (row.seq, row.entry))
            .collect())
    }

    /// The keys of the task's journal entries numbered after `after`: `(seq, key)`, in order
    /// (for the instance running the task to notice entries written elsewhere).
    pub async fn agent_journal_keys_after(
        &self,
        task: AgentTaskId,
        after: i64,
    ) -> Result<Vec<(i64, String)>, Error> {
        Ok(agent_journal::Entity::find()
            .select_only()
            .column(agent_journal::Column::Seq)
            .column(agent_journal::Column::Key)
            .filter(agent_journal::Column::TaskId.eq(task))
            .filter(agent_journal::Column::Seq.gt(after))
            .order_by_asc(agent_journal::Column::Seq)
            .into_tuple::<(i64, String)>()
            .all(self.connection())
            .await?)
    }

    /// Appends `entry` (JSON) under `key`, numbered after the last one; `false` (and nothing
    /// written) when the task has an entry under `key` already. The task's `updated_at` (its
    /// last activity) moves with it.
    pub async fn append_agent_journal(
        &self,
        task: AgentTaskId,
        key: &str,
        entry: &str,
    ) -> Result<bool, Error> {
        let transaction = self.begin_write().await?;
        let now = now();
        let last: Option<i64> = agent_journal::Entity::find()
            .select_only()
            .column_as(agent_journal::Column::Seq.max(), "last")
            .filter(agent_journal::Column::TaskId.eq(task))
            .into_tuple::<Option<i64>>()
            .one(&transaction)
            .await?
            .flatten();
        let inserted = agent_journal::Entity::insert(agent_journal::ActiveModel {
            task_id: Set(task),
            seq: Set(last.unwrap_or(0) + 1),
            key: Set(key.to_owned()),
            entry: Set(entry.to_owned()),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([agent_journal::Column::TaskId, agent_journal::Column::Key])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&transaction)
        .await?;
        if inserted > 0 {
            agent_tasks::Entity::update_many()
                .col_expr(agent_tasks::Column::UpdatedAt, Expr::value(now))
                .filter(agent_tasks::Column::Id.eq(task))
                .exec(&transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(inserted > 0)
    }

    /// Reserves model step `step` of the task: one conditional `UPDATE` that counts it only if
    /// it is past the last step reserved and every limit still has room. A step reserved before
    /// is [`StepReservation::Reserved`] again without counting twice.
    pub async fn reserve_agent_step(
        &self,
        task: AgentTaskId,
        step: u64,
    ) -> Result<StepReservation, Error> {
        let step = signed(step);
        let Some(row) = self.agent_task(task).await? else {
            return Ok(StepReservation::Missing);
        };
        if row.last_step >= step {
            return Ok(StepReservation::Reserved);
        }
        if let Some(limit) = row.wall_time_limit_seconds
            && (now() - row.created_at).num_seconds() >= limit
        {
            return Ok(StepReservation::Exceeded(TaskLimit::WallTime));
        }
        let room = Condition::all()
            .add(
                Condition::any()
                    .add(agent_tasks::Column::StepLimit.is_null())
                    .add(
                        Expr::col(agent_tasks::Column::StepsUsed)
                            .lt(Expr::col(agent_tasks::Column::StepLimit)),
                    ),
            )
            .add(
                Condition::any()
                    .add(agent_tasks::Column::TokenLimit.is_null())
                    .add(
                        Expr::col(agent_tasks::Column::TokensUsed)
                            .lt(Expr::col(agent_tasks::Column::TokenLimit)),
                    ),
            )
            .add(
                Condition::any()
                    .add(agent_tasks::Column::CostLimitMicros.is_null())
                    .add(
                        Expr::col(agent_tasks::Column::CostUsedMicros)
                            .lt(Expr::col(agent_tasks::Column::CostLimitMicros)),
                    ),
            );
        let reserved = agent_tasks::Entity::update_many()
            .col_expr(
                agent_tasks::Column::StepsUsed,
                Expr::col(agent_tasks::Column::StepsUsed).add(1),
            )
            .col_expr(agent_tasks::Column::LastStep, Expr::value(step))
            .col_expr(agent_tasks::Column::UpdatedAt, Expr::value(now()))
            .filter(agent_tasks::Column::Id.eq(task))
            .filter(agent_tasks::Column::LastStep.lt(step))
            .filter(room)
            .exec(self.connection())
            .await?;
        if reserved.rows_affected > 0 {
            return Ok(StepReservation::Reserved);
        }
        let Some(row) = self.agent_task(task).await? else {
            return Ok(StepReservation::Missing);
        };
        let reached = |used: i64, limit: Option<i64>| limit.is_some_and(|limit| used >= limit);
        Ok(if row.last_step >= step {
            StepReservation::Reserved
        } else if reached(row.steps_used, row.step_limit) {
            StepReservation::Exceeded(TaskLimit::Steps)
        } else if reached(row.tokens_used, row.token_limit) {
            StepReservation::Exceeded(TaskLimit::Tokens)
        } else {
            StepReservation::Exceeded(TaskLimit::Cost)
        })
    }

    /// Adds what a model call used to the task's totals, once per `key`: recording the same
    /// key again adds nothing. Returns whether it was new.
    pub async fn record_agent_usage(
        &self,
        task: AgentTaskId,
        key: &str,
        tokens: u64,
        cost_micros: u64,
    ) -> Result<bool, Error> {
        let transaction = self.begin_write().await?;
        let inserted = agent_usage::Entity::insert(agent_usage::ActiveModel {
            task_id: Set(task),
            key: Set(key.to_owned()),
            tokens: Set(signed(tokens)),
            cost_micros: Set(signed(cost_micros)),
            created_at: Set(now()),
        })
        .on_conflict(
            OnConflict::columns([agent_usage::Column::TaskId, agent_usage::Column::Key])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&transaction)
        .await?;
        if inserted > 0 {
            agent_tasks::Entity::update_many()
                .col_expr(
                    agent_tasks::Column::TokensUsed,
                    Expr::col(agent_tasks::Column::TokensUsed).add(signed(tokens)),
                )
                .col_expr(
                    agent_tasks::Column::CostUsedMicros,
                    Expr::col(agent_tasks::Column::CostUsedMicros).add(signed(cost_micros)),
                )
                .filter(agent_tasks::Column::Id.eq(task))
                .exec(&transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(inserted > 0)
    }
}
