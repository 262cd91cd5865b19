//! The agent's tools: their JSON schemas (what the model sees) and what each call does. A tool
//! that fails (bad or malformed arguments, an unknown tool, a search text not found) returns its
//! error to the model as the call's result; it never stops the loop.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::journal::FileEffect;
use crate::patch::{PatchOperation, apply_hunks, parse_patch};
use crate::workspace::{Workspace, content_hash, normalize_path};

/// How a tool call ended, as the model is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    /// It did what was asked.
    Ok,
    /// It failed; the content says why.
    Error,
    /// It was interrupted (the agent stopped while a command ran); it was not run again.
    Interrupted,
    /// The files changed under the edit since it was planned; nothing was applied.
    Conflict,
}

/// The state of a plan item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// Not started.
    Pending,
    /// Being worked on.
    InProgress,
    /// Finished.
    Done,
}

/// One item of the visible todo list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    /// What to do.
    pub text: String,
    /// Its state.
    pub status: PlanStatus,
}

/// Tool names.
pub mod names {
    /// Reads a window of a file.
    pub const READ: &str = "read";
    /// Lists files.
    pub const LIST: &str = "list";
    /// Searches files.
    pub const GREP: &str = "grep";
    /// The repo map.
    pub const REPO_MAP: &str = "repo_map";
    /// Search and replace.
    pub const EDIT: &str = "edit";
    /// A new file.
    pub const WRITE: &str = "write";
    /// A multi-file patch.
    pub const APPLY_PATCH: &str = "apply_patch";
    /// Runs a command.
    pub const RUN: &str = "run";
    /// Replaces the plan.
    pub const UPDATE_PLAN: &str = "update_plan";
    /// Ends the task.
    pub const FINISH: &str = "finish";
}

/// The tools' definitions, sent with every request.
pub fn definitions() -> Vec<llm::Tool> {
    let tool = |name: &str, description: &str, parameters: Value| llm::Tool {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
    };
    vec![
        tool(
            names::READ,
            "Read a text file of the worktree: a window of numbered lines.",
            json!({"type": "object", "properties": {
                "path": {"type": "string", "description": "Relative to the worktree's root."},
                "offset": {"type": "integer", "minimum": 1, "description": "The first line (from 1)."},
                "limit": {"type": "integer", "minimum": 1, "description": "How many lines (at most 2000)."}
            }, "required": ["path"]}),
        ),
        tool(
            names::LIST,
            "List the worktree's files, optionally matching a glob such as src/**/*.rs.",
            json!({"type": "object", "properties": {
                "glob": {"type": "string"}
            }}),
        ),
        tool(
            names::GREP,
            "Search the files for a regular expression; returns path:line: text.",
            json!({"type": "object", "properties": {
                "pattern": {"type": "string", "description": "A regular expression (Rust syntax)."},
                "glob": {"type": "string", "description": "Only files matching this glob."}
            }, "required": ["pattern"]}),
        ),
        tool(
            names::REPO_MAP,
            "A map of the code most relevant to a query: files and their definitions.",
            json!({"type": "object", "properties": {
                "query": {"type": "string"}
            }, "required": ["query"]}),
        ),
        tool(
            names::EDIT,
            "Replace old_text by new_text in a file. old_text must occur exactly once unless replace_all is true.",
            json!({"type": "object", "properties": {
                "path": {"type": "string"},
                "old_text": {"type": "string"},
                "new_text": {"type": "string"},
                "replace_all": {"type": "boolean"}
            }, "required": ["path", "old_text", "new_text"]}),
        ),
        tool(
            names::WRITE,
            "Create a new file with this content (fails when the file exists: use edit or apply_patch).",
            json!({"type": "object", "properties": {
                "path": {"type": "string"},
                "content": {"type": "string"}
            }, "required": ["path", "content"]}),
        ),
        tool(
            names::APPLY_PATCH,
            "Apply a patch to several files at once, all or nothing. Format:\n*** Begin Patch\n*** Add File: path\n+line\n*** Update File: path\n@@ optional line to find first\n context\n-removed\n+added\n*** Delete File: path\n*** End Patch",
            json!({"type": "object", "properties": {
                "patch": {"type": "string"}
            }, "required": ["patch"]}),
        ),
        tool(
            names::RUN,
            "Run a shell command in the worktree's root (tests, linters, builds) in the sandbox.",
            json!({"type": "object", "properties": {
                "command": {"type": "string"},
                "timeout_seconds": {"type": "integer", "minimum": 1}
            }, "required": ["command"]}),
        ),
        tool(
            names::UPDATE_PLAN,
            "Replace the visible plan (todo list). Keep it up to date: one item in_progress at a time.",
            json!({"type": "object", "properties": {
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "text": {"type": "string"},
                    "status": {"type": "string", "enum": ["pending", "in_progress", "done"]}
                }, "required": ["text", "status"]}}
            }, "required": ["items"]}),
        ),
        tool(
            names::FINISH,
            "End the task with a summary of what was done and the evidence (commands run and their results).",
            json!({"type": "object", "properties": {
                "summary": {"type": "string"},
                "evidence": {"type": "string"}
            }, "required": ["summary"]}),
        ),
    ]
}

/// A call, checked and ready to be carried out.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Action {
    /// Reads a window of a file.
    Read {
        path: String,
        offset: usize,
        limit: usize,
    },
    /// Lists files.
    List { glob: Option<String> },
    /// Searches.
    Grep {
        pattern: String,
        glob: Option<String>,
    },
    /// The repo map.
    RepoMap { query: String },
    /// Changes files: what the journal records before applying them.
    Mutation {
        effects: Vec<FileEffect>,
        result: String,
    },
    /// Runs a command.
    Run { command: String, timeout: Duration },
    /// Replaces the plan.
    Plan(Vec<PlanItem>),
    /// Ends the task.
    Finish { summary: String },
}

fn arguments<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> Result<T, String> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    let value: Value = serde_json::from_str(text).map_err(|error| {
        format!("the arguments of {name} are not valid JSON ({error}); send the call again with a JSON object")
    })?;
    serde_json::from_value(value)
        .map_err(|error| format!("the arguments of {name} are wrong: {error}"))
}

/// The call's tool and arguments as one canonical string (for stuck detection).
pub(crate) fn action_key(call: &llm::ToolCall) -> String {
    let arguments = serde_json::from_str::<Value>(&call.arguments)
        .map(|value| value.to_string())
        .unwrap_or_else(|_| call.arguments.clone());
    format!("{} {arguments}", call.name)
}

#[derive(Deserialize)]
struct ReadArguments {
    path: String,
    offset: Option<usize>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
struct ListArguments {
    glob: Option<String>,
}

#[derive(Deserialize)]
struct GrepArguments {
    pattern: String,
    glob: Option<String>,
}

#[derive(Deserialize)]
struct RepoMapArguments {
    query: String,
}

#[derive(Deserialize)]
struct EditArguments {
    path: String,
    old_text: String,
    new_text: String,
    #[serde(default)]
    replace_all: bool,
}

#[derive(Deserialize)]
struct WriteArguments {
    path: String,
    content: String,
}

#[derive(Deserialize)]
struct PatchArguments {
    patch: String,
}

#[derive(Deserialize)]
struct RunArguments {
    command: String,
    timeout_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct PlanArguments {
    items: Vec<PlanItem>,
}

#[derive(Deserialize)]
struct FinishArguments {
    summary: String,
    evidence: Option<String>,
}

async fn read_existing(workspace: &dyn Workspace, path: &str) -> Result<String, String> {
    match workspace.read(path).await {
        Ok(Some(content)) => Ok(content),
        Ok(None) => Err(format!("{path} does not exist")),
        Err(error) => Err(error.to_string()),
    }
}

/// Checks a call and works out what it will do (for edits: every file's content after, with
/// its hash before). Nothing is changed yet.
pub(crate) async fn prepare(
    call: &llm::ToolCall,
    workspace: &dyn Workspace,
    maximum_timeout: Duration,
) -> Result<Action, String> {
    match call.name.as_str() {
        names::READ => {
            let arguments: ReadArguments = arguments(&call.name, &call.arguments)?;
            Ok(Action::Read {
                path: normalize_path(&arguments.path).map_err(|error| error.to_string())?,
                offset: arguments.offset.unwrap_or(1).max(1),
                limit: arguments.limit.unwrap_or(400).clamp(1, 2000),
            })
        }
        names::LIST => {
            let arguments: ListArguments = arguments(&call.name, &call.arguments)?;
            Ok(Action::List {
                glob: arguments.glob,
            })
        }
        names::GREP => {
            let arguments: GrepArguments = arguments(&call.name, &call.arguments)?;
            Ok(Action::Grep {
                pattern: arguments.pattern,
                glob: arguments.glob,
            })
        }
        names::REPO_MAP => {
            let arguments: RepoMapArguments = arguments(&call.name, &call.arguments)?;
            Ok(Action::RepoMap {
                query: arguments.query,
            })
        }
        names::EDIT => {
            let arguments: EditArguments = arguments(&call.name, &call.arguments)?;
            let path = normalize_path(&arguments.path).map_err(|error| error.to_string())?;
            if arguments.old_text.is_empty() {
                return Err("old_text is empty; to create a file use write".into());
            }
            let content = read_existing(workspace, &path).await?;
            let count = content.matches(&arguments.old_text).count();
            if count == 0 {
                return Err(format!(
                    "old_text was not found in {path}; read the file again and copy the text exactly"
                ));
            }
            if count > 1 && !arguments.replace_all {
                return Err(format!(
                    "old_text occurs {count} times in {path}; add surrounding lines to make it unique, or set replace_all"
                ));
            }
            let after = content.replace(&arguments.old_text, &arguments.new_text);
            Ok(Action::Mutation {
                effects: vec![FileEffect {
                    path: path.clone(),
                    before_hash: Some(content_hash(&content)),
                    after: Some(after),
                }],
                result: format!("edited {path}: {count} replacement(s)"),
            })
        }
        names::WRITE => {
            let arguments: WriteArguments = arguments(&call.name, &call.arguments)?;
            let path = normalize_path(&arguments.path).map_err(|error| error.to_string())?;
            match workspace.read(&path).await {
                Ok(Some(_)) => Err(format!(
                    "{path} exists already; change it with edit or apply_patch"
                )),
                Ok(None) => Ok(Action::Mutation {
                    effects: vec![FileEffect {
                        path: path.clone(),
                        before_hash: None,
                        after: Some(arguments.content),
                    }],
                    result: format!("created {path}"),
                }),
                Err(error) => Err(error.to_string()),
            }
        }
        names::APPLY_PATCH => {
            let arguments: PatchArguments = arguments(&call.name, &call.arguments)?;
            let operations = parse_patch(&arguments.patch).map_err(|error| error.to_string())?;
            prepare_patch(&operations, workspace).await
        }
        names::RUN => {
            let arguments: RunArguments = arguments(&call.name, &call.arguments)?;
            if arguments.command.trim().is_empty() {
                return Err("the command is empty".into());
            }
            let timeout = arguments
                .timeout_seconds
                .map(Duration::from_secs)
                .unwrap_or(maximum_timeout)
                .min(maximum_timeout);
            Ok(Action::Run {
                command: arguments.command,
                timeout,
            })
        }
        names::UPDATE_PLAN => {
            let arguments: PlanArguments = arguments(&call.name, &call.arguments)?;
            Ok(Action::Plan(arguments.items))
        }
        names::FINISH => {
            let arguments: FinishArguments = arguments(&call.name, &call.arguments)?;
            let summary = match arguments.evidence {
                Some(evidence) if !evidence.trim().is_empty() => {
                    format!("{}\n\nEvidence:\n{evidence}", arguments.summary)
                }
                _ => arguments.summary,
            };
            Ok(Action::Finish { summary })
        }
        other => {
            let known: Vec<String> = definitions().into_iter().map(|tool| tool.name).collect();
            Err(format!(
                "there is no tool named {other:?}; the tools are: {}",
                known.join(", ")
            ))
        }
    }
}

async fn prepare_patch(
    operations: &[PatchOperation],
    workspace: &dyn Workspace,
) -> Result<Action, String> {
    let mut effects = Vec::new();
    let mut touched = HashSet::new();
    let mut summary = Vec::new();
    let mut claim = |path: &str| -> Result<String, String> {
        let path = normalize_path(path).map_err(|error| error.to_string())?;
        if !touched.insert(path.clone()) {
            return Err(format!("the patch changes {path} twice"));
        }
        Ok(path)
    };
    for operation in operations {
        match operation {
            PatchOperation::Add { path, content } => {
                let path = claim(path)?;
                if workspace
                    .read(&path)
                    .await
                    .map_err(|error| error.to_string())?
                    .is_some()
                {
                    return Err(format!("the patch was not applied: {path} exists already"));
                }
                effects.push(FileEffect {
                    path: path.clone(),
                    before_hash: None,
                    after: Some(content.clone()),
                });
                summary.push(format!("added {path}"));
            }
            PatchOperation::Delete { path } => {
                let path = claim(path)?;
                let content = read_existing(workspace, &path)
                    .await
                    .map_err(|error| format!("the patch was not applied: {error}"))?;
                effects.push(FileEffect {
                    path: path.clone(),
                    before_hash: Some(content_hash(&content)),
                    after: None,
                });
                summary.push(format!("deleted {path}"));
            }
            PatchOperation::Update {
                path,
                move_to,
                hunks,
            } => {
                let path = claim(path)?;
                let content = read_existing(workspace, &path)
                    .await
                    .map_err(|error| format!("the patch was not applied: {error}"))?;
                let after =
                    apply_hunks(&path, &content, hunks).map_err(|error| error.to_string())?;
                match move_to {
                    Some(target) => {
                        let target = claim(target)?;
                        if workspace
                            .read(&target)
                            .await
                            .map_err(|error| error.to_string())?
                            .is_some()
                        {
                            return Err(format!(
                                "the patch was not applied: {target} exists already"
                            ));
                        }
                        effects.push(FileEffect {
                            path: path.clone(),
                            before_hash: Some(content_hash(&content)),
                            after: None,
                        });
                        effects.push(FileEffect {
                            path: target.clone(),
                            before_hash: None,
                            after: Some(after),
                        });
                        summary.push(format!("moved {path} to {target}"));
                    }
                    None => {
                        effects.push(FileEffect {
                            path: path.clone(),
                            before_hash: Some(content_hash(&content)),
                            after: Some(after),
                        });
                        summary.push(format!("updated {path}"));
                    }
                }
            }
        }
    }
    Ok(Action::Mutation {
        effects,
        result: format!("patch applied: {}", summary.join(", ")),
    })
}

/// Carries out a read-only action.
pub(crate) async fn run_read_only(
    action: &Action,
    workspace: &dyn Workspace,
) -> Result<String, String> {
    match action {
        Action::Read {
            path,
            offset,
            limit,
        } => {
            let content = read_existing(workspace, path).await?;
            let lines: Vec<&str> = content.lines().collect();
            let total = lines.len();
            if total == 0 {
                return Ok(format!("{path} is empty"));
            }
            if *offset > total {
                return Err(format!(
                    "{path} has {total} lines; offset {offset} is past its end"
                ));
            }
            let end = (offset - 1 + limit).min(total);
            let mut text = String::new();
            for (index, line) in lines[offset - 1..end].iter().enumerate() {
                text.push_str(&format!("{:>6}\t{line}\n", offset + index));
            }
            if *offset > 1 || end < total {
                text.push_str(&format!("(lines {offset}-{end} of {total}"));
                if end < total {
                    text.push_str(&format!("; read with offset {} for more", end + 1));
                }
                text.push_str(")\n");
            }
            Ok(text)
        }
        Action::List { glob } => {
            let files = workspace
                .list(glob.as_deref())
                .await
                .map_err(|error| error.to_string())?;
            if files.is_empty() {
                return Ok("no file matches".into());
            }
            Ok(files.join("\n"))
        }
        Action::Grep { pattern, glob } => {
            let matches = workspace
                .grep(pattern, glob.as_deref(), 500)
                .await
                .map_err(|error| error.to_string())?;
            if matches.is_empty() {
                return Ok("no match".into());
            }
            Ok(matches
                .iter()
                .map(|found| format!("{}:{}: {}", found.path, found.line_number, found.line))
                .collect::<Vec<_>>()
                .join("\n"))
        }
        Action::RepoMap { query } => workspace
            .repo_map(query, 2000)
            .await
            .map_err(|error| error.to_string()),
        Action::Mutation { .. } | Action::Run { .. } | Action::Plan(_) | Action::Finish { .. } => {
            Err("not a read-only action".into())
        }
    }
}

/// Applies the effects: all of them, or (when a write fails) none, the files written so far
/// being put back.
pub(crate) async fn apply_effects(
    workspace: &dyn Workspace,
    effects: &[FileEffect],
) -> crate::Result<()> {
    let mut originals: Vec<(String, Option<String>)> = Vec::new();
    for effect in effects {
        let original = workspace.read(&effect.path).await?;
        let outcome = match &effect.after {
            Some(content) => workspace.write(&effect.path, content).await,
            None => match workspace.delete(&effect.path).await {
                Err(crate::Error::NotFound(_)) => Ok(()),
                other => other,
            },
        };
        if let Err(error) = outcome {
            for (path, content) in originals.into_iter().rev() {
                let restored = match content {
                    Some(content) => workspace.write(&path, &content).await,
                    None => workspace.delete(&path).await,
                };
                if let Err(restore_error) = restored {
                    tracing::error!(%path, %restore_error, "a file could not be put back after a failed patch");
                }
            }
            return Err(error);
        }
        originals.push((effect.path.clone(), original));
    }
    Ok(())
}

/// Where each effect stands now: applied, not applied, or changed by someone else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EffectState {
    Applied,
    Pending,
    Conflict,
}

/// Compares the files with an effect recorded before a crash.
pub(crate) async fn effect_state(
    workspace: &dyn Workspace,
    effect: &FileEffect,
) -> crate::Result<EffectState> {
    let current = workspace.read(&effect.path).await?;
    let current_hash = current.as_deref().map(content_hash);
    let after_hash = effect.after.as_deref().map(content_hash);
    if current_hash == after_hash {
        return Ok(EffectState::Applied);
    }
    if current_hash == effect.before_hash {
        return Ok(EffectState::Pending);
    }
    Ok(EffectState::Conflict)
}
