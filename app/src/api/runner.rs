//! Running a project's commands: its commands (saved and suggested), starting and stopping a
//! run, the last runs. A run's output is followed through `GET /api/runs/<id>/events`.

use leptos::prelude::*;

use crate::error::AppError;
use crate::types::{ProjectRunner, RunnerInfo};

#[cfg(feature = "ssr")]
use super::projects::project_id;

/// The runner's status for the wire; layers only for administrators.
#[cfg(feature = "ssr")]
pub fn runner_info(status: &services::runner::RunnerStatus, with_layers: bool) -> RunnerInfo {
    use crate::types::SandboxLayer;
    let layers = match (&status.report, with_layers) {
        (Some(report), true) => [
            ("user namespaces", &report.user_namespaces),
            ("network namespace", &report.network_namespace),
            ("bubblewrap", &report.bubblewrap),
            ("Landlock", &report.landlock),
            ("seccomp", &report.seccomp),
            ("cgroup v2", &report.cgroup_v2),
        ]
        .into_iter()
        .map(|(name, state)| SandboxLayer {
            name: name.to_owned(),
            available: state.available,
            detail: state.detail.clone(),
        })
        .collect(),
        _ => Vec::new(),
    };
    RunnerInfo {
        available: status.available,
        reason: status.reason.clone(),
        fix: status.fix.clone(),
        identity: status
            .report
            .as_ref()
            .map(|report| format!("{}:{}", report.identity.uid, report.identity.gid)),
        isolation: status
            .layers
            .as_ref()
            .map(|layers| format!("{:?}", layers.isolation)),
        layers,
    }
}

/// A run's summary for the wire.
#[cfg(feature = "ssr")]
pub fn run_summary_of(summary: services::runner::RunSummary) -> crate::types::CommandRunSummary {
    use db::tables::runs::RunState;
    crate::types::CommandRunSummary {
        id: summary.run_id.to_string(),
        state: match summary.state {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Interrupted => "interrupted",
            RunState::Failed => "failed",
        }
        .to_owned(),
        command_name: summary.command_name,
        command_line: summary.command_line,
        revision: summary.revision,
        created_at: summary.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        outcome: summary.outcome.map(outcome_of),
        failure: summary.failure,
    }
}

#[cfg(feature = "ssr")]
fn outcome_of(outcome: services::runner::RunOutcome) -> crate::types::CommandRunOutcome {
    crate::types::CommandRunOutcome {
        exit_code: outcome.exit_code,
        signal: outcome.signal,
        duration_ms: outcome.duration_ms,
        timed_out: outcome.timed_out,
        stopped: outcome.stopped,
        omitted_bytes: outcome.omitted_bytes,
    }
}

/// A run's event for the wire.
#[cfg(feature = "ssr")]
pub fn run_event_of(event: services::runner::CommandRunEvent) -> crate::types::CommandRunEvent {
    use crate::types::CommandRunEvent as Wire;
    use services::runner::{CommandRunEvent, OutputStream};
    let stream_name = |stream: OutputStream| match stream {
        OutputStream::Stdout => "stdout".to_owned(),
        OutputStream::Stderr => "stderr".to_owned(),
    };
    match event {
        CommandRunEvent::Started {
            command_name,
            command_line,
            revision,
            files,
            files_written,
            isolation,
            ..
        } => Wire::Started {
            command_name,
            command_line,
            revision,
            files,
            files_written,
            isolation,
        },
        CommandRunEvent::Output { stream, text } => Wire::Output {
            stream: stream_name(stream),
            text,
        },
        CommandRunEvent::Omitted { stream, bytes } => Wire::Omitted {
            stream: stream_name(stream),
            bytes,
        },
        CommandRunEvent::Finished(outcome) => Wire::Finished(outcome_of(outcome)),
        CommandRunEvent::Failed { message } => Wire::Failed { message },
    }
}

/// `POST /api/runner/project`: whether commands can run here, the project's commands (saved,
/// then suggested) and its last runs.
#[server(prefix = "/api", endpoint = "runner/project")]
pub async fn load_project_runner(project_id: String) -> Result<ProjectRunner, AppError> {
    use crate::types::ProjectCommand;
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    let services = super::request::services()?;
    let view = services
        .project_commands(&user, project)
        .await
        .map_err(super::reject_service_error)?;
    let runs = services
        .command_runs(&user, project)
        .await
        .map_err(super::reject_service_error)?;
    let is_admin = user.role == db::tables::users::Role::Admin;
    let mut commands: Vec<ProjectCommand> = view
        .saved
        .into_iter()
        .map(|(name, command_line)| ProjectCommand {
            name,
            command_line,
            suggested: false,
            source: None,
        })
        .collect();
    commands.extend(view.suggested.into_iter().map(|suggestion| ProjectCommand {
        name: suggestion.name,
        command_line: suggestion.command_line,
        suggested: true,
        source: Some(suggestion.source),
    }));
    Ok(ProjectRunner {
        runner: runner_info(services.runner.status(), false),
        commands,
        runs: runs.into_iter().map(run_summary_of).collect(),
        free_text_allowed: is_admin,
    })
}

/// `POST /api/runner/save-command`: saves a named command of the project.
#[server(prefix = "/api", endpoint = "runner/save-command")]
pub async fn save_project_command(
    project_id: String,
    name: String,
    command_line: String,
) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    super::request::services()?
        .save_project_command(
            &user,
            project,
            &name,
            &command_line,
            &super::request::meta(),
        )
        .await
        .map_err(super::reject_service_error)
}

/// `POST /api/runner/delete-command`: removes a named command of the project.
#[server(prefix = "/api", endpoint = "runner/delete-command")]
pub async fn delete_project_command(project_id: String, name: String) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    super::request::services()?
        .delete_project_command(&user, project, &name, &super::request::meta())
        .await
        .map_err(super::reject_service_error)
}

/// `POST /api/runner/start`: runs the project's command `name` (saved or suggested) on its
/// saved files, or, for administrators, `command_line` typed for this run; returns the run's
/// id, whose output `GET /api/runs/<id>/events` streams.
#[server(prefix = "/api", endpoint = "runner/start")]
pub async fn start_run(
    project_id: String,
    name: String,
    command_line: Option<String>,
) -> Result<String, AppError> {
    use services::runner::StartRun;
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    let what = match command_line.filter(|line| !line.trim().is_empty()) {
        Some(line) => StartRun::FreeText(line),
        None => StartRun::Named(name),
    };
    let run = super::request::services()?
        .start_command_run(&user, project, what, &super::request::meta())
        .await
        .map_err(super::reject_service_error)?;
    Ok(run.to_string())
}

/// `POST /api/runner/stop`: asks the caller's run `id` to stop.
#[server(prefix = "/api", endpoint = "runner/stop")]
pub async fn stop_run(id: String) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    let run = id
        .trim()
        .parse()
        .map_err(|_| super::reject(AppError::NotFound))?;
    super::request::services()?
        .stop_command_run(&user, run)
        .await
        .map_err(super::reject_service_error)
}

/// `POST /api/admin/sandbox`: the sandbox's layers as probed at start (administrators only).
#[server(prefix = "/api", endpoint = "admin/sandbox")]
pub async fn admin_sandbox() -> Result<RunnerInfo, AppError> {
    let user = super::request::require_user().await?;
    services::admin::require_admin(&user).map_err(super::reject_service_error)?;
    let services = super::request::services()?;
    Ok(runner_info(services.runner.status(), true))
}
