//! What the chat panel needs from the workspace: the file and selection in the editor (sent as
//! context), and applying a code block to a file through the diff view.

use leptos::prelude::*;

use super::state::{SaveState, Workspace};
use super::{ApplyTarget, Comparison, open_in_tab, refresh_tree};
use crate::api::files::{create_file, open_file, save_file};
use crate::types::{EditorContext, SaveResult};

/// The active tab's file as the editor holds it (saved or not), with the selection.
pub fn editor_context(workspace: Workspace) -> Option<EditorContext> {
    let tab = workspace.active_tab_untracked()?;
    if tab.binary {
        return None;
    }
    #[cfg(feature = "hydrate")]
    let content = crate::editor::models::text(&tab.uri()).unwrap_or(tab.loaded_text.clone());
    #[cfg(not(feature = "hydrate"))]
    let content = tab.loaded_text.clone();
    #[cfg(feature = "hydrate")]
    let selection = workspace
        .editor
        .with_value(|editor| editor.as_ref().and_then(|editor| editor.selection()));
    #[cfg(not(feature = "hydrate"))]
    let selection: Option<(u32, u32, String)> = None;
    Some(EditorContext {
        path: tab.path.clone(),
        language: tab.language.clone(),
        content,
        selection_start_line: selection.as_ref().map(|(start, _, _)| *start),
        selection_end_line: selection.as_ref().map(|(_, end, _)| *end),
        selection: selection.map(|(_, _, text)| text),
    })
}

/// Opens the diff view for `code` against the file it names (`path`), or the active file when it
/// names none. Returns a message for the person when there is no file to apply it to.
pub async fn propose_edit(
    workspace: Workspace,
    comparison: RwSignal<Option<Comparison>>,
    path: Option<String>,
    code: String,
    language: Option<String>,
) -> Result<(), String> {
    let active = workspace.active_tab_untracked();
    let path = path
        .or_else(|| active.as_ref().map(|tab| tab.path.clone()))
        .ok_or_else(|| {
            "This code block names no file and no file is open: open the file to apply it to."
                .to_owned()
        })?;
    let open_tab = workspace
        .tabs
        .with_untracked(|tabs| tabs.iter().find(|tab| tab.path == path).cloned());
    let in_tree = workspace.tree.with_untracked(|tree| {
        tree.files
            .iter()
            .find(|file| file.path == path)
            .map(|file| file.id.clone())
    });
    let (left, target, language) = if let Some(tab) = open_tab {
        #[cfg(feature = "hydrate")]
        let text = crate::editor::models::text(&tab.uri()).unwrap_or(tab.loaded_text.clone());
        #[cfg(not(feature = "hydrate"))]
        let text = tab.loaded_text.clone();
        (
            text,
            ApplyTarget {
                file_id: Some(tab.file_id.clone()),
                path: path.clone(),
                base_version: tab.base_version,
            },
            tab.language.clone().or(language),
        )
    } else if let Some(file_id) = in_tree {
        let file = open_file(workspace.project_id(), file_id.clone())
            .await
            .map_err(|error| error.to_string())?;
        if file.binary {
            return Err(format!(
                "{path} is a binary file; code cannot be applied to it."
            ));
        }
        (
            file.content.unwrap_or_default(),
            ApplyTarget {
                file_id: Some(file_id),
                path: path.clone(),
                base_version: file.version,
            },
            file.language.or(language),
        )
    } else {
        (
            String::new(),
            ApplyTarget {
                file_id: None,
                path: path.clone(),
                base_version: 0,
            },
            language,
        )
    };
    let new_file = target.file_id.is_none();
    comparison.set(Some(Comparison {
        title: if new_file {
            format!("Create {path}")
        } else {
            format!("Apply to {path}")
        },
        left_label: if new_file {
            "New file".into()
        } else {
            "Now".into()
        },
        right_label: "Proposed (you can edit it here)".into(),
        left,
        right: code,
        language,
        apply: Some(target),
    }));
    Ok(())
}

/// Saves an accepted edit as a new revision (or creates the file); an open tab follows.
pub async fn apply_edit(
    workspace: Workspace,
    target: ApplyTarget,
    text: String,
) -> Result<String, String> {
    let Some(file_id) = target.file_id else {
        let created = create_file(workspace.project_id(), target.path.clone(), text)
            .await
            .map_err(|error| format!("Not created: {error}"))?;
        refresh_tree(workspace);
        open_in_tab(workspace, created.id, None);
        return Ok(format!("Created {}.", target.path));
    };
    match save_file(
        workspace.project_id(),
        file_id.clone(),
        target.base_version.to_string(),
        text.clone(),
    )
    .await
    {
        Ok(SaveResult::Saved { version }) => {
            if workspace
                .tabs
                .with_untracked(|tabs| tabs.iter().any(|tab| tab.file_id == file_id))
            {
                #[cfg(feature = "hydrate")]
                {
                    use crate::editor::models;
                    let uri = crate::editor::model_uri(&file_id);
                    models::replace_text(&uri, &text);
                    models::mark_saved(&uri, models::version(&uri));
                }
                workspace.update_tab(&file_id, |tab| {
                    tab.base_version = version;
                    tab.loaded_text = text;
                    tab.dirty = false;
                    tab.state = SaveState::Idle;
                });
            }
            refresh_tree(workspace);
            Ok(format!("Saved {} as version {version}.", target.path))
        }
        Ok(SaveResult::Conflict { .. }) => Err(format!(
            "Not saved: {} changed since the diff was opened. Apply again to compare with the latest version.",
            target.path
        )),
        Err(error) => Err(format!("Not saved: {error}")),
    }
}
