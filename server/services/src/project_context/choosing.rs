//! The context chosen for a chat message from the index: the editor's file and selection, the
//! repo map ranked for the request, errors' locations, recent changes, manifests, within the
//! mode's budget and the conversation's pins and drops.

use std::collections::{BTreeMap, HashSet};

use context::index::Index;
use db::ids::ProjectId;

use super::index::*;
use super::request::{ContextInput, ContextPolicy, check_context};

/// A conversation's pins and drops, as stored.
pub fn choices_of(value: Option<&serde_json::Value>) -> BTreeMap<String, context::Choice> {
    value
        .and_then(|value| serde_json::from_value(value.clone()).ok())
        .unwrap_or_default()
}

/// Dependency manifests sent as context (at the project's root or one folder down).
const MANIFEST_NAMES: &[&str] = &[
    "Cargo.toml",
    "package.json",
    "pyproject.toml",
    "requirements.txt",
    "go.mod",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
];
/// Longest manifest or diff sent (characters).
const MAX_SOURCE_CHARS: usize = 4000;
/// Places in attached output sent, at most.
const MAX_ERROR_LOCATIONS: usize = 6;
/// Lines shown before and after a place attached output points at.
const LINES_AROUND: u32 = 8;
/// Recently changed files whose last change is sent, at most.
const RECENT_CHANGES: u64 = 3;
/// Only changes this recent count as recent.
const RECENT_WINDOW_HOURS: i64 = 72;
/// Pins and drops kept per conversation, at most.
const MAX_CHOICES: usize = 500;

/// The context chosen for a message, and the index it was chosen from.
#[derive(Clone, Debug)]
pub struct ChosenContext {
    pub manifest: context::Manifest,
    /// `None` without a project.
    pub index: Option<IndexStatus>,
}

fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit).collect();
    if let Some(end) = cut.rfind('\n') {
        cut.truncate(end + 1);
    }
    cut.push_str("… (cut)\n");
    cut
}

/// The selection and the current file, as the mode's policy allows.
pub fn editor_candidates(
    input: &ContextInput,
    policy: &ContextPolicy,
) -> (Vec<context::Candidate>, Vec<context::Item>) {
    use context::{Candidate, ItemKind};
    let mut candidates = Vec::new();
    let mut refused = Vec::new();
    let Some(file) = &input.current_file else {
        return (candidates, refused);
    };
    let mut offer = |allowed: bool, candidate: Candidate, why_not: &str| {
        if allowed {
            candidates.push(candidate);
        } else {
            refused.push(context::Item {
                key: candidate.key(),
                kind: candidate.kind,
                label: candidate.label,
                reason: format!("{}; {why_not}", candidate.reason),
                score: candidate.score,
                tokens: 0,
                included: false,
                choice: None,
                language: candidate.language,
                content: String::new(),
            });
        }
    };
    if let Some(selection) = file
        .selection
        .as_ref()
        .filter(|selection| !selection.text.trim().is_empty())
    {
        offer(
            policy.selection,
            Candidate {
                kind: ItemKind::Selection,
                label: format!(
                    "{}:{}-{}",
                    file.path, selection.start_line, selection.end_line
                ),
                reason: "selected in the editor".into(),
                score: 1.0,
                content: selection.text.clone(),
                language: file.language.clone(),
            },
            "this mode does not send selections",
        );
    }
    offer(
        policy.current_file,
        Candidate {
            kind: ItemKind::CurrentFile,
            label: file.path.clone(),
            reason: "open in the editor".into(),
            score: 1.0,
            content: file.content.clone(),
            language: file.language.clone(),
        },
        "this mode does not send the current file",
    );
    (candidates, refused)
}

impl crate::Services {
    /// The tokenizer family of the model a conversation asks (its own, else the user's default).
    async fn tokenizer_for(
        &self,
        user: &crate::AuthenticatedUser,
        model: Option<&str>,
    ) -> Result<context::TokenizerFamily, crate::Error> {
        let route = match model {
            Some(model) => Some(model.to_owned()),
            None => self.default_model(user).await?,
        };
        let Some(route) = route else {
            return Ok(context::TokenizerFamily::default());
        };
        let model = route.rsplit('/').next().unwrap_or(&route);
        let provider = self
            .ai
            .catalog
            .provider_of(model)
            .map_or("", |provider| provider.name());
        Ok(context::TokenizerFamily::of_model(provider, model))
    }

    /// Chooses the context of a message: the selection and current file, places attached output
    /// points at, recent changes, dependency manifests and the repo map, within the mode's
    /// budget and the conversation's pins and drops.
    #[allow(clippy::too_many_arguments)]
    pub async fn choose_context(
        &self,
        user: &crate::AuthenticatedUser,
        project: Option<ProjectId>,
        model: Option<&str>,
        choices: &BTreeMap<String, context::Choice>,
        policy: &ContextPolicy,
        input: &ContextInput,
        text: &str,
    ) -> Result<ChosenContext, crate::Error> {
        use context::{Candidate, ItemKind};
        let family = self.tokenizer_for(user, model).await?;
        let (mut candidates, refused) = editor_candidates(input, policy);
        let current_path = input.current_file.as_ref().map(|file| file.path.clone());
        let Some(project) = project else {
            let manifest = context::choose(
                &Index::new(),
                context::Selection {
                    budget: policy.max_tokens,
                    family,
                    candidates,
                    map: None,
                    choices,
                },
            );
            return Ok(ChosenContext {
                manifest: with_refused(manifest, refused),
                index: None,
            });
        };
        let entry = self.context.project(&self.database, project);
        self.context
            .bring_up_to_date(&self.database, project, &entry)
            .await?;
        let paths: Vec<String> = entry.read(|index| index.files().keys().cloned().collect());
        let path_refs: Vec<&str> = paths.iter().map(String::as_str).collect();

        if policy.errors {
            let mut seen = HashSet::new();
            for location in context::diagnostics::locations(text) {
                if seen.len() >= MAX_ERROR_LOCATIONS {
                    break;
                }
                let Some(path) = context::diagnostics::resolve(&location.path, &path_refs) else {
                    continue;
                };
                if !seen.insert((path.to_owned(), location.line)) {
                    continue;
                }
                let Some(file) = self.database.find_file_by_path(project, path).await? else {
                    continue;
                };
                let (first, excerpt) =
                    context::diagnostics::excerpt(&file.content, location.line, LINES_AROUND);
                if excerpt.is_empty() {
                    continue;
                }
                let last = first + excerpt.lines().count() as u32 - 1;
                candidates.push(Candidate {
                    kind: ItemKind::ErrorLocation,
                    label: format!("{path}:{first}-{last}"),
                    reason: format!(
                        "line {} is named by the {} output in your message",
                        location.line, location.format
                    ),
                    score: 1.0,
                    content: excerpt,
                    language: file.language.clone(),
                });
            }
        }

        let mut recent_paths = Vec::new();
        if policy.recent_changes {
            let since = chrono::Utc::now() - chrono::Duration::hours(RECENT_WINDOW_HOURS);
            let recent = self
                .database
                .recently_changed_files(project, RECENT_CHANGES + 1)
                .await?;
            for (file, path, updated_at) in recent {
                if updated_at < since || Some(&path) == current_path.as_ref() {
                    continue;
                }
                if candidates
                    .iter()
                    .filter(|candidate| candidate.kind == ItemKind::RecentChange)
                    .count() as u64
                    >= RECENT_CHANGES
                {
                    continue;
                }
                let revisions = self.database.latest_revisions(file, 2).await?;
                let [newest, previous] = revisions.as_slice() else {
                    continue;
                };
                if newest.binary_content.is_some() || previous.binary_content.is_some() {
                    continue;
                }
                let diff = similar::TextDiff::from_lines(&previous.content, &newest.content)
                    .unified_diff()
                    .context_radius(2)
                    .header(&format!("a/{path}"), &format!("b/{path}"))
                    .to_string();
                if diff.trim().is_empty() {
                    continue;
                }
                recent_paths.push(path.clone());
                candidates.push(Candidate {
                    kind: ItemKind::RecentChange,
                    label: path.clone(),
                    reason: format!(
                        "changed {} (version {} to {})",
                        updated_at.format("%Y-%m-%d %H:%M UTC"),
                        previous.version,
                        newest.version
                    ),
                    score: 0.6,
                    content: cut(&diff, MAX_SOURCE_CHARS),
                    language: Some("diff".into()),
                });
            }
        }

        if policy.manifests {
            for path in &paths {
                let name = path.rsplit('/').next().unwrap_or(path);
                if !MANIFEST_NAMES.contains(&name) || path.matches('/').count() > 1 {
                    continue;
                }
                let Some(file) = self.database.find_file_by_path(project, path).await? else {
                    continue;
                };
                candidates.push(Candidate {
                    kind: ItemKind::Dependencies,
                    label: path.clone(),
                    reason: "the project's dependencies".into(),
                    score: 0.4,
                    content: cut(&file.content, MAX_SOURCE_CHARS),
                    language: file.language.clone(),
                });
            }
        }

        let co_changed = match (&current_path, policy.repo_map) {
            (Some(current), true) => {
                let history = self
                    .database
                    .change_history(project, CO_CHANGE_HISTORY)
                    .await?;
                crate::co_changes::changed_together(&history, current)
            }
            _ => Vec::new(),
        };
        let map = policy.repo_map.then(|| context::RankRequest {
            chat_files: current_path.iter().cloned().collect(),
            mentioned_files: context::mentioned_files(text, path_refs.iter().copied()),
            recent_files: recent_paths,
            mentioned_names: context::mentioned_names(text),
            co_changed,
        });
        let budget = policy.max_tokens;
        let choices = choices.clone();
        let work_entry = entry.clone();
        let manifest = tokio::task::spawn_blocking(move || {
            work_entry.read(|index| {
                context::choose(
                    index,
                    context::Selection {
                        budget,
                        family,
                        candidates,
                        map,
                        choices: &choices,
                    },
                )
            })
        })
        .await
        .map_err(|error| crate::Error::Internal(format!("context choice failed: {error}")))?;
        Ok(ChosenContext {
            manifest: with_refused(manifest, refused),
            index: Some(entry.status()),
        })
    }

    /// The context the next message would carry: in a conversation (its project, model, mode,
    /// pins and drops), or before there is one (a project and a mode).
    #[allow(clippy::too_many_arguments)]
    pub async fn preview_context(
        &self,
        user: &crate::AuthenticatedUser,
        conversation: Option<db::ids::ConversationId>,
        project: Option<ProjectId>,
        mode: &str,
        input: &ContextInput,
        text: &str,
    ) -> Result<ChosenContext, crate::Error> {
        check_context(input)?;
        let (project, model, choices, mode) = match conversation {
            Some(id) => {
                let found = self
                    .database
                    .find_conversation(user.id, id)
                    .await?
                    .ok_or(crate::Error::NotFound)?;
                (
                    found.project_id,
                    found.model.clone(),
                    choices_of(found.context_choices.as_ref()),
                    found.mode.clone(),
                )
            }
            None => {
                if let Some(project) = project {
                    self.project(user, project).await?;
                }
                (project, None, BTreeMap::new(), mode.to_owned())
            }
        };
        let mode = self.usable_mode(user, &mode).await?;
        self.choose_context(
            user,
            project,
            model.as_deref(),
            &choices,
            &mode.context,
            input,
            text,
        )
        .await
    }

    /// Where a project's index stands (starting it when it is not loaded).
    pub async fn context_index_status(
        &self,
        user: &crate::AuthenticatedUser,
        project: ProjectId,
    ) -> Result<IndexStatus, crate::Error> {
        self.project(user, project).await?;
        Ok(self.context.project(&self.database, project).status())
    }

    /// Pins, drops or releases (`None`) one context item of a conversation.
    pub async fn set_context_choice(
        &self,
        user: &crate::AuthenticatedUser,
        conversation: db::ids::ConversationId,
        key: &str,
        choice: Option<context::Choice>,
    ) -> Result<BTreeMap<String, context::Choice>, crate::Error> {
        if key.is_empty() || key.len() > 1024 || !key.contains(':') {
            return Err(crate::Error::Invalid(
                "That context item is unknown.".into(),
            ));
        }
        let found = self
            .database
            .find_conversation(user.id, conversation)
            .await?
            .ok_or(crate::Error::NotFound)?;
        let mut choices = choices_of(found.context_choices.as_ref());
        match choice {
            Some(choice) => {
                if !choices.contains_key(key) && choices.len() >= MAX_CHOICES {
                    return Err(crate::Error::LimitReached(format!(
                        "A conversation keeps at most {MAX_CHOICES} pins and drops; release some first."
                    )));
                }
                choices.insert(key.to_owned(), choice);
            }
            None => {
                choices.remove(key);
            }
        }
        let value = serde_json::to_value(&choices)
            .map_err(|error| crate::Error::Internal(error.to_string()))?;
        self.database
            .set_context_choices(user.id, conversation, value)
            .await?
            .ok_or(crate::Error::NotFound)?;
        Ok(choices)
    }
}

/// Adds the items the mode's policy refused (listed, not sent) after the others of their kind.
fn with_refused(mut manifest: context::Manifest, refused: Vec<context::Item>) -> context::Manifest {
    for item in refused.into_iter().rev() {
        manifest.items.insert(0, item);
    }
    manifest
}
