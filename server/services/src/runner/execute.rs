//! The runner's use cases: a project's commands, starting, stopping, listing and following
//! runs, and recovering the runs an instance left.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use db::ids::{ProjectId, RunId};
use db::queries::runs::NewRun;
use db::tables::runs::RunState;
use db::tables::users::Role;
use db::{NewAuditEntry, Reservation};
use serde::Serialize;

use super::commands::{self, SETUP, SuggestedCommand};
use super::{
    ActiveRun, COMMAND_RUN, CommandRunEvent, KEPT_RUNS, OUTPUT_HEAD_BYTES, OUTPUT_TAIL_BYTES,
    OutputStream, RunOutcome, Utf8Carry,
};
use crate::policy::{ACTIVE_RUNS_COUNTER, run_seconds_counter};
use crate::runs::{RunError, RunReader, RunWriter};
use crate::{AuthenticatedUser, Error, RequestMeta, Services};

/// A project's commands: the saved ones and those its files suggest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandsView {
    /// `(name, command line)`, by name.
    pub saved: Vec<(String, String)>,
    /// Suggestions whose name is not saved.
    pub suggested: Vec<SuggestedCommand>,
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartRun {
    /// A saved command, or a suggested one by name (the person asked for it).
    Named(String),
    /// A command line typed for this run only (administrators only).
    FreeText(String),
}

/// One run of a project's command, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub run_id: RunId,
    pub state: RunState,
    pub command_name: String,
    pub command_line: String,
    pub revision: String,
    pub created_at: DateTime<Utc>,
    /// How it ended, once it has.
    pub outcome: Option<RunOutcome>,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

/// A run's reservations on its owner's plan, given back when it ends.
#[derive(Clone, Debug)]
struct Reservations {
    user: db::ids::UserId,
    active: bool,
    /// The day's counter and the seconds reserved on it.
    seconds: Option<(String, u64)>,
}

impl Services {
    /// The project's commands and the suggestions of its files.
    pub async fn project_commands(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
    ) -> Result<CommandsView, Error> {
        self.project(user, project).await?;
        let saved: Vec<(String, String)> = self
            .database
            .project_commands(project)
            .await?
            .into_iter()
            .map(|command| (command.name, command.command_line))
            .collect();
        let tree = self.database.tree_of(project).await?;
        let paths: Vec<String> = tree.files.iter().map(|file| file.path.clone()).collect();
        let mut manifests = std::collections::HashMap::new();
        for name in ["package.json", "pyproject.toml"] {
            if paths.iter().any(|path| path == name)
                && let Some(file) = self.database.find_file_by_path(project, name).await?
            {
                manifests.insert(name, file.content);
            }
        }
        let suggested = commands::suggest(&paths, &|name| manifests.get(name).cloned())
            .into_iter()
            .filter(|suggestion| !saved.iter().any(|(name, _)| *name == suggestion.name))
            .collect();
        Ok(CommandsView { saved, suggested })
    }

    /// Saves a command of the project (a new one, or a new command line).
    pub async fn save_project_command(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        name: &str,
        command_line: &str,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        self.project(user, project).await?;
        let name = commands::check_name(name)?;
        let command_line = commands::check_command_line(command_line)?;
        self.database
            .save_project_command(project, &name, &command_line, Utc::now())
            .await?;
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "project.command.save",
                target_type: Some("project"),
                target_id: Some(project.to_string()),
                detail: Some(serde_json::json!({ "name": name, "command": command_line })),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await
    }

    /// Removes a command of the project.
    pub async fn delete_project_command(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        name: &str,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        self.project(user, project).await?;
        if !self.database.delete_project_command(project, name).await? {
            return Err(Error::NotFound);
        }
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "project.command.delete",
                target_type: Some("project"),
                target_id: Some(project.to_string()),
                detail: Some(serde_json::json!({ "name": name })),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await
    }

    /// Starts a command of the project: checks that running is possible here and that the
    /// plan allows it (reserving a concurrent run and the run's timeout in seconds of the day,
    /// in the database, before anything runs), then materialises the worktree and runs the
    /// command in the sandbox from a task of its own, its output going into a run of kind
    /// [`COMMAND_RUN`] that anyone allowed can follow. Returns the run's id at once.
    pub async fn start_command_run(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        what: StartRun,
        meta: &RequestMeta,
    ) -> Result<RunId, Error> {
        self.project(user, project).await?;
        let sandbox = self.runner.sandbox()?.clone();
        let (command_name, command_line) = match what {
            StartRun::FreeText(command_line) => {
                if user.role != Role::Admin {
                    return Err(Error::Forbidden);
                }
                (String::new(), commands::check_command_line(&command_line)?)
            }
            StartRun::Named(name) => {
                let view = self.project_commands(user, project).await?;
                let command_line = view
                    .saved
                    .iter()
                    .find(|(saved, _)| *saved == name)
                    .map(|(_, line)| line.clone())
                    .or_else(|| {
                        view.suggested
                            .iter()
                            .find(|suggestion| suggestion.name == name)
                            .map(|suggestion| suggestion.command_line.clone())
                    })
                    .ok_or(Error::NotFound)?;
                (name, command_line)
            }
        };
        let setup = if command_name == SETUP {
            None
        } else {
            self.database
                .project_commands(project)
                .await?
                .into_iter()
                .find(|command| command.name == SETUP)
                .map(|command| command.command_line)
        };
        let limits = self.tiers.limits(Some(user.tier));
        let timeout_seconds = limits
            .run_timeout_seconds
            .unwrap_or(u64::MAX)
            .min(self.runner.settings().max_timeout.as_secs());
        if timeout_seconds == 0 || limits.concurrent_runs == Some(0) {
            return Err(Error::LimitReached(
                "Your plan does not include running project commands.".to_owned(),
            ));
        }
        // One run per project at a time in its worktree (on this instance).
        {
            let active = self.runner.active();
            if active.values().any(|run| run.project == project) {
                return Err(Error::Conflict(
                    "A command of this project is running; stop it or wait for its end.".to_owned(),
                ));
            }
        }
        let reservations = self
            .reserve_run(
                user,
                limits.concurrent_runs,
                limits.run_seconds_per_day,
                timeout_seconds,
            )
            .await?;
        let writer = match self
            .runs
            .start::<CommandRunEvent>(NewRun {
                kind: COMMAND_RUN.to_owned(),
                owner_user_id: Some(user.id),
                subject: Some(project.to_string()),
            })
            .await
        {
            Ok(writer) => writer,
            Err(error) => {
                self.give_back(&reservations, Duration::ZERO).await;
                return Err(error.into());
            }
        };
        let run_id = writer.run_id();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let raced = {
            let mut active = self.runner.active();
            let raced = active.values().any(|run| run.project == project);
            if !raced {
                active.insert(
                    run_id,
                    ActiveRun {
                        project,
                        stop: Some(stop),
                    },
                );
            }
            raced
        };
        if raced {
            // Another start won the race between the check and here.
            if let Err(error) = writer.finish(RunState::Failed).await {
                tracing::warn!(%error, "a refused run could not be ended");
            }
            self.give_back(&reservations, Duration::ZERO).await;
            return Err(Error::Conflict(
                "A command of this project is running; stop it or wait for its end.".to_owned(),
            ));
        }
        let job = Job {
            services: self.clone(),
            sandbox,
            user: user.clone(),
            meta: meta.clone(),
            project,
            command_name,
            command_line,
            setup,
            timeout: Duration::from_secs(timeout_seconds),
            reservations,
        };
        tokio::spawn(job.run(writer, stopped));
        Ok(run_id)
    }

    /// Reserves a concurrent run and the run's seconds on the user's plan counters.
    async fn reserve_run(
        &self,
        user: &AuthenticatedUser,
        concurrent: Option<u64>,
        seconds_per_day: Option<u64>,
        timeout_seconds: u64,
    ) -> Result<Reservations, Error> {
        let mut reservations = Reservations {
            user: user.id,
            active: false,
            seconds: None,
        };
        if let Some(limit) = concurrent {
            if !self
                .reserve_counter(user, ACTIVE_RUNS_COUNTER, 1, limit)
                .await?
            {
                return Err(Error::LimitReached(format!(
                    "Your plan runs {limit} command{} at a time; wait for one to end or stop it.",
                    if limit == 1 { "" } else { "s" }
                )));
            }
            reservations.active = true;
        }
        if let Some(limit) = seconds_per_day {
            let counter = run_seconds_counter(Utc::now());
            match self
                .reserve_counter(user, &counter, timeout_seconds, limit)
                .await
            {
                Ok(true) => reservations.seconds = Some((counter, timeout_seconds)),
                outcome => {
                    self.give_back(&reservations, Duration::ZERO).await;
                    outcome?;
                    return Err(Error::LimitReached(format!(
                        "Your plan's {} minutes of commands for today are used up (a run reserves its {}-second timeout).",
                        limit / 60,
                        timeout_seconds
                    )));
                }
            }
        }
        Ok(reservations)
    }

    /// One conditional update of the counter (seeded at 0 the first time).
    async fn reserve_counter(
        &self,
        user: &AuthenticatedUser,
        counter: &str,
        amount: u64,
        limit: u64,
    ) -> Result<bool, Error> {
        let mut outcome = self
            .database
            .reserve_on_plan_counter(user.id, counter, amount, limit)
            .await?;
        if outcome == Reservation::Missing {
            self.database.seed_plan_counter(user.id, counter, 0).await?;
            outcome = self
                .database
                .reserve_on_plan_counter(user.id, counter, amount, limit)
                .await?;
        }
        Ok(outcome == Reservation::Reserved)
    }

    /// Gives back a run's reservations: the concurrent run, and the seconds it did not use.
    async fn give_back(&self, reservations: &Reservations, used: Duration) {
        if reservations.active
            && let Err(error) = self
                .database
                .release_on_plan_counter(reservations.user, ACTIVE_RUNS_COUNTER, 1)
                .await
        {
            tracing::error!(%error, "a concurrent run's reservation could not be given back");
        }
        if let Some((counter, reserved)) = &reservations.seconds {
            let used = used.as_secs() + u64::from(used.subsec_nanos() > 0);
            let unused = reserved.saturating_sub(used);
            if unused > 0
                && let Err(error) = self
                    .database
                    .release_on_plan_counter(reservations.user, counter, unused)
                    .await
            {
                tracing::error!(%error, "a run's unused seconds could not be given back");
            }
        }
    }

    /// Asks a run of the caller's to stop (SIGTERM to its processes, SIGKILL after a grace
    /// period), on whichever instance supervises it. A run that has ended is left as it is.
    pub async fn stop_command_run(
        &self,
        user: &AuthenticatedUser,
        run_id: RunId,
    ) -> Result<(), Error> {
        let run = self.command_run_of(user, run_id).await?;
        if run.state.is_terminal() {
            return Ok(());
        }
        let stop = self
            .runner
            .active()
            .get_mut(&run_id)
            .and_then(|active| active.stop.take());
        match stop {
            Some(stop) => {
                if stop.send(()).is_err() {
                    // The run ended meanwhile.
                }
                Ok(())
            }
            None if self.runner.active().contains_key(&run_id) => Ok(()),
            // Supervised by another instance: the stop goes through the run, and that instance
            // stops it as it would a stop asked for there.
            None => {
                self.runs.request_stop(run_id).await?;
                Ok(())
            }
        }
    }

    /// The run, when it is one of the caller's command runs.
    async fn command_run_of(
        &self,
        user: &AuthenticatedUser,
        run_id: RunId,
    ) -> Result<db::tables::runs::Model, Error> {
        let run = self.runs.run(run_id).await?.ok_or(Error::NotFound)?;
        if run.kind != COMMAND_RUN || run.owner_user_id != Some(user.id) {
            return Err(Error::NotFound);
        }
        Ok(run)
    }

    /// The project's last runs, newest first, with how each ended.
    pub async fn command_runs(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
    ) -> Result<Vec<RunSummary>, Error> {
        self.project(user, project).await?;
        let runs = self
            .database
            .runs_about(COMMAND_RUN, &project.to_string(), KEPT_RUNS + 5)
            .await?;
        let mut summaries = Vec::with_capacity(runs.len());
        for run in runs {
            if run.owner_user_id != Some(user.id) {
                continue;
            }
            let mut summary = RunSummary {
                run_id: run.id,
                state: run.state,
                command_name: String::new(),
                command_line: String::new(),
                revision: String::new(),
                created_at: run.created_at,
                outcome: None,
                failure: None,
            };
            for row in self
                .database
                .run_events_of_kinds(run.id, &["started", "finished", "failed"])
                .await?
            {
                match serde_json::from_str::<CommandRunEvent>(&row.payload) {
                    Ok(CommandRunEvent::Started {
                        command_name,
                        command_line,
                        revision,
                        ..
                    }) => {
                        summary.command_name = command_name;
                        summary.command_line = command_line;
                        summary.revision = revision;
                    }
                    Ok(CommandRunEvent::Finished(outcome)) => summary.outcome = Some(outcome),
                    Ok(CommandRunEvent::Failed { message }) => summary.failure = Some(message),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(run = %run.id, %error, "a run event could not be read");
                    }
                }
            }
            summaries.push(summary);
        }
        Ok(summaries)
    }

    /// Follows a run of the caller's from after event `after_seq`.
    pub async fn follow_command_run(
        &self,
        user: &AuthenticatedUser,
        run_id: RunId,
        after_seq: i64,
    ) -> Result<RunReader<CommandRunEvent>, Error> {
        self.command_run_of(user, run_id).await?;
        Ok(self.runs.follow(run_id, after_seq))
    }

    /// Recovers abandoned command runs now and every half lease, for as long as the process
    /// runs (a run whose instance died is ended, and its reservation given back, within about
    /// a lease and a half).
    pub async fn keep_recovering_command_runs(self) {
        let period = (self.runs.config().lease.lease / 2).max(Duration::from_millis(100));
        let mut rounds = tokio::time::interval(period);
        rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            rounds.tick().await;
            match self.recover_command_runs().await {
                Ok(0) => {}
                Ok(runs) => tracing::info!(runs, "command runs whose server went away ended"),
                Err(error) => tracing::warn!(%error, "recovering abandoned command runs failed"),
            }
        }
    }

    /// Ends the command runs an instance left behind (its lease expired: it stopped or died):
    /// each is marked interrupted with a `failed` event, its reservations given back and the
    /// run audited. Returns how many.
    pub async fn recover_command_runs(&self) -> Result<usize, Error> {
        let services = self.clone();
        Ok(self
            .runs
            .recover::<CommandRunEvent, _, _>(COMMAND_RUN, move |writer| {
                let services = services.clone();
                async move {
                    writer.push(CommandRunEvent::Failed {
                        message: "The server running this command stopped before it ended."
                            .to_owned(),
                    })?;
                    let run = writer.run().clone();
                    writer.finish(RunState::Interrupted).await?;
                    if let Some(user) = run.owner_user_id {
                        services
                            .give_back(
                                &Reservations {
                                    user,
                                    active: true,
                                    seconds: None,
                                },
                                Duration::ZERO,
                            )
                            .await;
                        let entry = NewAuditEntry {
                            actor_id: Some(user),
                            action: "project.command.run",
                            target_type: Some("project"),
                            target_id: run.subject.clone(),
                            detail: Some(serde_json::json!({
                                "run": run.id.to_string(),
                                "outcome": "interrupted",
                            })),
                            ..NewAuditEntry::default()
                        };
                        if let Err(error) = services.database.record_audit(entry, Utc::now()).await
                        {
                            tracing::error!(%error, "an interrupted run could not be audited");
                        }
                    }
                    Ok::<(), RunError>(())
                }
            })
            .await?)
    }
}

/// One run being carried out.
struct Job {
    services: Services,
    sandbox: sandbox::Sandbox,
    user: AuthenticatedUser,
    meta: RequestMeta,
    project: ProjectId,
    command_name: String,
    command_line: String,
    setup: Option<String>,
    timeout: Duration,
    reservations: Reservations,
}

/// How a job's command went, for the audit log and the run's state.
struct Ending {
    state: RunState,
    outcome: Option<RunOutcome>,
    revision: String,
    failure: Option<String>,
}

/// One command of a run: the setup or the command itself.
struct Step<'a> {
    command_line: &'a str,
    /// The time it may take.
    timeout: Duration,
    /// The network it may use (only a setup's may be the host's).
    network: sandbox::Network,
}

impl Job {
    async fn run(
        self,
        writer: RunWriter<CommandRunEvent>,
        stopped: tokio::sync::oneshot::Receiver<()>,
    ) {
        let run_id = writer.run_id();
        let writer = Arc::new(writer);
        let ending = self.carry_out(&writer, stopped).await;
        let used = ending.outcome.as_ref().map_or(Duration::ZERO, |outcome| {
            Duration::from_millis(outcome.duration_ms)
        });
        match Arc::try_unwrap(writer) {
            Ok(writer) => {
                if let Err(error) = writer.finish(ending.state).await {
                    tracing::warn!(run = %run_id, %error, "a command run could not be ended");
                }
            }
            Err(_shared) => {
                tracing::error!(run = %run_id, "a command run's writer is still shared")
            }
        }
        self.services.give_back(&self.reservations, used).await;
        self.services.runner.active().remove(&run_id);
        let detail = serde_json::json!({
            "run": run_id.to_string(),
            "command": self.command_name,
            "command_line": self.command_line,
            "revision": ending.revision,
            "exit_code": ending.outcome.as_ref().and_then(|outcome| outcome.exit_code),
            "signal": ending.outcome.as_ref().and_then(|outcome| outcome.signal),
            "duration_ms": ending.outcome.as_ref().map(|outcome| outcome.duration_ms),
            "timed_out": ending.outcome.as_ref().is_some_and(|outcome| outcome.timed_out),
            "stopped": ending.outcome.as_ref().is_some_and(|outcome| outcome.stopped),
            "failure": ending.failure,
        });
        if let Err(error) = self
            .services
            .audit(
                NewAuditEntry {
                    actor_id: Some(self.user.id),
                    action: "project.command.run",
                    target_type: Some("project"),
                    target_id: Some(self.project.to_string()),
                    detail: Some(detail),
                    ..NewAuditEntry::default()
                },
                &self.meta,
            )
            .await
        {
            tracing::error!(run = %run_id, %error, "a command run could not be audited");
        }
        if let Err(error) = self
            .services
            .database
            .prune_runs_about(COMMAND_RUN, &self.project.to_string(), KEPT_RUNS)
            .await
        {
            tracing::warn!(%error, "old command runs could not be removed");
        }
    }

    /// Materialises, runs the setup when it is due, runs the command.
    async fn carry_out(
        &self,
        writer: &RunWriter<CommandRunEvent>,
        mut stopped: tokio::sync::oneshot::Receiver<()>,
    ) -> Ending {
        let failed = |revision: String, message: String| {
            if let Err(error) = writer.push(CommandRunEvent::Failed {
                message: message.clone(),
            }) {
                tracing::warn!(%error, "a run's failure could not be written");
            }
            Ending {
                state: RunState::Failed,
                outcome: None,
                revision,
                failure: Some(message),
            }
        };
        let worktrees = self.services.runner.worktrees();
        let materialised = match worktrees
            .materialise(&self.services.database, self.project)
            .await
        {
            Ok(materialised) => materialised,
            Err(error) => {
                tracing::error!(%error, "a worktree could not be written");
                return failed(
                    String::new(),
                    "The project's files could not be written for the run.".to_owned(),
                );
            }
        };
        let revision = materialised.revision.clone();
        if let Err(error) = writer.push(CommandRunEvent::Started {
            project_id: self.project.to_string(),
            command_name: self.command_name.clone(),
            command_line: self.command_line.clone(),
            revision: revision.clone(),
            files: u64::try_from(materialised.files).unwrap_or(u64::MAX),
            files_written: u64::try_from(materialised.written).unwrap_or(u64::MAX),
            files_removed: u64::try_from(materialised.removed).unwrap_or(u64::MAX),
            materialise_ms: u64::try_from(materialised.elapsed.as_millis()).unwrap_or(u64::MAX),
            isolation: format!("{:?}", self.sandbox.layers().isolation),
        }) {
            tracing::warn!(%error, "a run's start could not be written");
        }
        let started = std::time::Instant::now();
        let mut stop_requested = false;
        // The setup runs when it changed or the files did since it last succeeded here.
        if let Some(setup) = &self.setup {
            let setup_network = if self.services.runner.settings().setup_network {
                sandbox::Network::Host
            } else {
                sandbox::Network::Off
            };
            let marker = worktrees.setup_marker(self.project);
            let due = std::fs::read_to_string(&marker).ok() != Some(format!("{revision}\n{setup}"));
            if due {
                let banner = format!("$ {setup}\n");
                if let Err(error) = writer.push(CommandRunEvent::Output {
                    stream: OutputStream::Stderr,
                    text: banner,
                }) {
                    tracing::warn!(%error, "a run's output could not be written");
                }
                match self
                    .execute(
                        writer,
                        Step {
                            command_line: setup,
                            timeout: self.timeout,
                            network: setup_network,
                        },
                        &materialised.root,
                        &mut stopped,
                        &mut stop_requested,
                    )
                    .await
                {
                    Ok(outcome) if outcome.exit_code == Some(0) => {
                        if let Err(error) = std::fs::write(&marker, format!("{revision}\n{setup}"))
                        {
                            tracing::warn!(%error, "the setup's marker could not be written");
                        }
                    }
                    Ok(outcome) => {
                        if let Err(error) = writer.push(CommandRunEvent::Finished(outcome.clone()))
                        {
                            tracing::warn!(%error, "a run's end could not be written");
                        }
                        return Ending {
                            state: RunState::Finished,
                            outcome: Some(outcome),
                            revision,
                            failure: Some("the setup command failed".to_owned()),
                        };
                    }
                    Err(message) => return failed(revision, message),
                }
            }
        }
        let remaining = self.timeout.saturating_sub(started.elapsed());
        if remaining.is_zero() || stop_requested {
            return failed(
                revision,
                "The setup used the whole run's time, or the run was stopped.".to_owned(),
            );
        }
        match self
            .execute(
                writer,
                Step {
                    command_line: &self.command_line,
                    timeout: remaining,
                    // The command itself never has the network.
                    network: sandbox::Network::Off,
                },
                &materialised.root,
                &mut stopped,
                &mut stop_requested,
            )
            .await
        {
            Ok(mut outcome) => {
                outcome.duration_ms =
                    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                if let Err(error) = writer.push(CommandRunEvent::Finished(outcome.clone())) {
                    tracing::warn!(%error, "a run's end could not be written");
                }
                Ending {
                    state: RunState::Finished,
                    outcome: Some(outcome),
                    revision,
                    failure: None,
                }
            }
            Err(message) => failed(revision, message),
        }
    }

    /// Runs one command line in the sandbox, its output into the run.
    async fn execute(
        &self,
        writer: &RunWriter<CommandRunEvent>,
        step: Step<'_>,
        worktree: &std::path::Path,
        stopped: &mut tokio::sync::oneshot::Receiver<()>,
        stop_requested: &mut bool,
    ) -> Result<RunOutcome, String> {
        let Step {
            command_line,
            timeout,
            network,
        } = step;
        let mut spec = sandbox::CommandSpec::shell(command_line, worktree);
        spec.network = network;
        spec.read_only_paths = self.services.runner.settings().toolchains.clone();
        // Python trusts a cached module whose source has the same size and modification second:
        // a fix saved within a second of the last run would not be seen. No cache, no stale one.
        spec.env
            .push(("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()));
        // The Run panel renders ANSI colours: ask for them as a terminal would get them (the
        // output is no terminal, so most tools would leave them out). "Send to chat" strips them.
        for (name, value) in [
            ("CLICOLOR_FORCE", "1"),
            ("FORCE_COLOR", "1"),
            ("CARGO_TERM_COLOR", "always"),
            ("PY_COLORS", "1"),
        ] {
            spec.env.push((name.to_owned(), value.to_owned()));
        }
        spec.limits.timeout = timeout;
        spec.limits.cpu_seconds = timeout.as_secs().max(1);
        spec.limits.output_head_bytes = OUTPUT_HEAD_BYTES;
        spec.limits.output_tail_bytes = OUTPUT_TAIL_BYTES;
        let mut handle = self.sandbox.run(spec).map_err(|error| {
            tracing::error!(%error, "a sandboxed command could not start");
            format!("The command could not start: {error}")
        })?;
        let mut stdout = Utf8Carry::default();
        let mut stderr = Utf8Carry::default();
        let mut lease_lost = false;
        loop {
            tokio::select! {
                event = handle.next_event() => {
                    let Some(event) = event else { break };
                    let event = match event {
                        sandbox::Event::Output { stream, bytes } => {
                            let carry = match stream {
                                sandbox::Stream::Stdout => &mut stdout,
                                sandbox::Stream::Stderr => &mut stderr,
                            };
                            let text = carry.push(&bytes);
                            if text.is_empty() {
                                continue;
                            }
                            CommandRunEvent::Output { stream: stream.into(), text }
                        }
                        sandbox::Event::Omitted { stream, bytes } => {
                            CommandRunEvent::Omitted { stream: stream.into(), bytes }
                        }
                    };
                    if writer.push(event).is_err() && !lease_lost {
                        // Nobody can see the output any more: end the command.
                        lease_lost = true;
                        handle.stop();
                    }
                }
                received = &mut *stopped, if !*stop_requested => {
                    *stop_requested = true;
                    if received.is_ok() {
                        handle.stop();
                    }
                }
                // Asked for on another instance.
                () = writer.stop_requested(), if !*stop_requested => {
                    *stop_requested = true;
                    handle.stop();
                }
                () = writer.lost(), if !lease_lost => {
                    lease_lost = true;
                    handle.stop();
                }
            }
        }
        for (stream, carry) in [
            (OutputStream::Stdout, &mut stdout),
            (OutputStream::Stderr, &mut stderr),
        ] {
            let text = carry.finish();
            if !text.is_empty()
                && let Err(error) = writer.push(CommandRunEvent::Output { stream, text })
            {
                tracing::warn!(%error, "a run's output could not be written");
            }
        }
        let result = handle.finish().await.map_err(|error| match error {
            sandbox::Error::SandboxSetup(reason) => {
                format!("The sandbox could not be set up, so the command did not run: {reason}")
            }
            other => {
                tracing::error!(error = %other, "a sandboxed run failed");
                format!("The run failed: {other}")
            }
        })?;
        Ok(RunOutcome {
            exit_code: result.exit_code,
            signal: result.signal,
            duration_ms: u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
            timed_out: result.timed_out,
            stopped: result.stopped,
            stdout_bytes: result.stdout_bytes,
            stderr_bytes: result.stderr_bytes,
            omitted_bytes: result.omitted_bytes,
        })
    }
}
