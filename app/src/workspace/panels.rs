//! The workspace's panels and dialogs: project search, file history, quick open and the diff view.

use leptos::prelude::*;

use super::state::{SaveState, Tab, use_workspace};
use super::{Comparison, open_in_tab};
use crate::api::files::{get_revision, list_revisions, open_file, restore_revision, search_files};
use crate::components::{Button, ButtonVariant, Modal, ToastKind, set_if_changed, use_toaster};
use crate::types::{RevisionSummary, SaveResult, SearchOutcome};

/// Most names quick open lists.
const QUICK_OPEN_RESULTS: usize = 50;

/// Search across the project's files, plain text or regular expression; a result opens the
/// file at its line.
#[component]
pub fn SearchPanel() -> impl IntoView {
    let workspace = use_workspace();
    let pattern = RwSignal::new(String::new());
    let regex = RwSignal::new(false);
    let case_sensitive = RwSignal::new(false);
    let outcome = RwSignal::new(None::<Result<SearchOutcome, String>>);
    let busy = RwSignal::new(false);
    let run = move || {
        let (text, regex, case_sensitive) = (
            pattern.get_untracked(),
            regex.get_untracked(),
            case_sensitive.get_untracked(),
        );
        if text.is_empty() {
            return;
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = search_files(workspace.project_id(), text, regex, case_sensitive).await;
            busy.set(false);
            outcome.set(Some(result.map_err(|error| error.to_string())));
        });
    };
    view! {
        <form
            class="search-form"
            role="search"
            on:submit=move |event| {
                event.prevent_default();
                run();
            }
        >
            <label class="visually-hidden" for="search-input">"Search in the project"</label>
            <input
                id="search-input"
                class="input"
                type="search"
                placeholder="Search in files"
                prop:value=move || pattern.get()
                on:input=move |event| pattern.set(event_target_value(&event))
            />
            <div class="search-options">
                <label>
                    <input
                        type="checkbox"
                        id="search-regex"
                        prop:checked=move || regex.get()
                        on:change=move |event| regex.set(event_target_checked(&event))
                    />
                    " Regular expression"
                </label>
                <label>
                    <input
                        type="checkbox"
                        id="search-case"
                        prop:checked=move || case_sensitive.get()
                        on:change=move |event| case_sensitive.set(event_target_checked(&event))
                    />
                    " Match case"
                </label>
            </div>
            <Button kind="submit" id="search-run" variant=ButtonVariant::Secondary disabled=busy>
                "Search"
            </Button>
        </form>
        <div class="search-results" aria-live="polite">
            {move || match outcome.get() {
                None => None,
                Some(Err(error)) => Some(view! { <p class="form-error" role="alert">{error}</p> }.into_any()),
                Some(Ok(found)) => {
                    let summary = if found.hits.is_empty() {
                        format!("No match in {} files.", found.files_searched)
                    } else if found.truncated {
                        format!("The first {} matches (there are more).", found.hits.len())
                    } else {
                        format!("{} matches in {} files searched.", found.hits.len(), found.files_searched)
                    };
                    Some(
                        view! {
                            <p class="search-summary">{summary}</p>
                            <ul class="search-hits">
                                {found
                                    .hits
                                    .into_iter()
                                    .map(|hit| {
                                        let (file_id, line, column) = (hit.file_id.clone(), hit.line, hit.column);
                                        view! {
                                            <li>
                                                <button
                                                    type="button"
                                                    class="search-hit"
                                                    on:click=move |_| open_in_tab(workspace, file_id.clone(), Some((line, column)))
                                                >
                                                    <span class="search-hit-place">{format!("{}:{}", hit.path, hit.line)}</span>
                                                    <code class="search-hit-preview">{hit.preview.clone()}</code>
                                                </button>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                            .into_any(),
                    )
                }
            }}
        </div>
    }
}

/// The active file's revisions: compare any with the current text, restore any (which adds a
/// revision; nothing is overwritten).
#[component]
pub fn HistoryPanel(
    open: RwSignal<bool>,
    comparison: RwSignal<Option<Comparison>>,
) -> impl IntoView {
    let workspace = use_workspace();
    let toaster = use_toaster();
    let revisions = RwSignal::new(None::<Result<Vec<RevisionSummary>, String>>);
    let load = move || {
        let Some(file_id) = workspace.active.get_untracked() else {
            revisions.set(None);
            return;
        };
        leptos::task::spawn_local(async move {
            let result = list_revisions(workspace.project_id(), file_id).await;
            revisions.set(Some(result.map_err(|error| error.to_string())));
        });
    };
    // Reload when the active file changes or its version does (a save, a restore).
    let loaded_for = StoredValue::new(None::<(String, i64)>);
    Effect::new(move |_| {
        let key = workspace
            .active_tab()
            .map(|tab| (tab.file_id, tab.base_version));
        if loaded_for.get_value() != key {
            loaded_for.set_value(key);
            load();
        }
    });

    let compare = move |revision: RevisionSummary| {
        let Some(tab) = workspace.active_tab_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            match get_revision(
                workspace.project_id(),
                tab.file_id.clone(),
                revision.id.clone(),
            )
            .await
            {
                Ok(old) => comparison.set(Some(Comparison {
                    title: format!(
                        "{}: version {} and the editor's text",
                        tab.path, revision.version
                    ),
                    left_label: format!(
                        "Version {} ({})",
                        revision.version,
                        crate::components::readable_utc(&revision.created_at)
                    ),
                    right_label: "Now in the editor".into(),
                    left: old.content.unwrap_or_default(),
                    right: current_text(&tab),
                    language: tab.language.clone(),
                    apply: None,
                })),
                Err(error) => toaster.show(ToastKind::Error, error.to_string()),
            }
        });
    };
    let restore = move |revision: RevisionSummary| {
        let Some(tab) = workspace.active_tab_untracked() else {
            return;
        };
        if tab.dirty {
            toaster.show(
                ToastKind::Error,
                "Save or undo your changes first: restoring replaces the editor's text.",
            );
            return;
        }
        leptos::task::spawn_local(async move {
            let project = workspace.project_id();
            let result = restore_revision(
                project.clone(),
                tab.file_id.clone(),
                revision.id.clone(),
                tab.base_version.to_string(),
            )
            .await;
            match result {
                Ok(SaveResult::Saved { .. }) => match open_file(project, tab.file_id.clone()).await
                {
                    Ok(file) => {
                        replace_with_saved(&tab, file.content.clone().unwrap_or_default());
                        workspace.update_tab(&tab.file_id, |tab| {
                            tab.base_version = file.version;
                            tab.loaded_text = file.content.unwrap_or_default();
                            tab.dirty = false;
                            tab.state = SaveState::Idle;
                        });
                        toaster.show(
                            ToastKind::Success,
                            format!(
                                "Restored version {} as version {}.",
                                revision.version, file.version
                            ),
                        );
                        load();
                    }
                    Err(error) => toaster.show(ToastKind::Error, error.to_string()),
                },
                Ok(SaveResult::Conflict { current }) => {
                    workspace
                        .update_tab(&tab.file_id, |tab| tab.state = SaveState::Conflict(current));
                }
                Err(error) => toaster.show(ToastKind::Error, error.to_string()),
            }
        });
    };

    view! {
        <aside class="history-panel" aria-label="History">
            <div class="history-header">
                <h2>"History"</h2>
                <button type="button" class="button button-ghost" aria-label="Close history" on:click=move |_| open.set(false)>
                    "×"
                </button>
            </div>
            <p class="history-file">{move || workspace.active_tab().map(|tab| tab.path).unwrap_or_default()}</p>
            {move || match revisions.get() {
                None => view! { <p>"Loading…"</p> }.into_any(),
                Some(Err(error)) => view! { <p class="form-error" role="alert">{error}</p> }.into_any(),
                Some(Ok(list)) => {
                    view! {
                        <ol class="revision-list">
                            {list
                                .into_iter()
                                .map(|revision| {
                                    let for_compare = revision.clone();
                                    let for_restore = revision.clone();
                                    view! {
                                        <li class="revision" data-version=revision.version>
                                            <div class="revision-title">
                                                {format!("Version {}", revision.version)}
                                                <span class="revision-source">{revision.source.clone()}</span>
                                            </div>
                                            <div class="revision-meta">
                                                <crate::components::LocalTime at=revision.created_at.clone()/>
                                                {format!(
                                                    " · {} · {} bytes",
                                                    revision.author.clone().unwrap_or_else(|| "unknown".into()),
                                                    revision.size_bytes,
                                                )}
                                            </div>
                                            <div class="revision-actions">
                                                <button type="button" class="button button-ghost" on:click=move |_| compare(for_compare.clone())>
                                                    "Compare"
                                                </button>
                                                <button type="button" class="button button-ghost" on:click=move |_| restore(for_restore.clone())>
                                                    "Restore"
                                                </button>
                                            </div>
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ol>
                    }
                        .into_any()
                }
            }}
        </aside>
    }
}

fn current_text(tab: &Tab) -> String {
    #[cfg(feature = "hydrate")]
    {
        crate::editor::models::text(&tab.uri()).unwrap_or_else(|| tab.loaded_text.clone())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        tab.loaded_text.clone()
    }
}

/// Puts saved text in the editor (as one undoable edit) and marks it saved.
#[cfg_attr(not(feature = "hydrate"), allow(unused_variables))]
fn replace_with_saved(tab: &Tab, text: String) {
    #[cfg(feature = "hydrate")]
    {
        use crate::editor::models;
        let uri = tab.uri();
        if models::exists(&uri) {
            models::replace_text(&uri, &text);
            models::mark_saved(&uri, models::version(&uri));
        }
    }
}

/// Ctrl/Cmd+P: find a file by name with a fuzzy match and open it.
#[component]
pub fn QuickOpen(open: RwSignal<bool>) -> impl IntoView {
    let workspace = use_workspace();
    let query = RwSignal::new(String::new());
    let highlighted = RwSignal::new(0usize);
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if open.get() {
            query.set(String::new());
            highlighted.set(0);
            if let Some(element) = input.get_untracked()
                && let Err(error) = element.focus()
            {
                leptos::logging::warn!("could not focus quick open: {error:?}");
            }
        }
    });
    let matches = Memo::new(move |_| {
        let query = query.get();
        let mut scored: Vec<(i64, String, String)> = workspace.tree.with(|tree| {
            tree.files
                .iter()
                .filter_map(|file| {
                    super::fuzzy_score(&query, &file.path)
                        .map(|score| (score, file.path.clone(), file.id.clone()))
                })
                .collect()
        });
        scored.sort_by(|left, right| right.0.cmp(&left.0).then_with(|| left.1.cmp(&right.1)));
        scored.truncate(QUICK_OPEN_RESULTS);
        scored
    });
    let choose = move |index: usize| {
        if let Some((_, _, file_id)) = matches.with_untracked(|matches| matches.get(index).cloned())
        {
            open.set(false);
            open_in_tab(workspace, file_id, None);
        }
    };
    view! {
        <Modal id="quick-open" title="Go to file" open>
            <input
                id="quick-open-input"
                class="input"
                type="text"
                role="combobox"
                aria-expanded="true"
                aria-controls="quick-open-list"
                aria-activedescendant=move || format!("quick-open-{}", highlighted.get())
                placeholder="Type part of a file name"
                autocomplete="off"
                autofocus=true
                node_ref=input
                prop:value=move || query.get()
                on:input=move |event| {
                    query.set(event_target_value(&event));
                    highlighted.set(0);
                }
                on:keydown=move |event: leptos::ev::KeyboardEvent| {
                    let count = matches.with_untracked(Vec::len);
                    match event.key().as_str() {
                        "ArrowDown" if count > 0 => highlighted.update(|index| *index = (*index + 1).min(count - 1)),
                        "ArrowUp" => highlighted.update(|index| *index = index.saturating_sub(1)),
                        "Enter" => choose(highlighted.get_untracked()),
                        _ => return,
                    }
                    event.prevent_default();
                }
            />
            <ul id="quick-open-list" class="quick-open-list" role="listbox" aria-label="Files">
                {move || {
                    matches
                        .get()
                        .into_iter()
                        .enumerate()
                        .map(|(index, (_, path, _))| {
                            view! {
                                <li
                                    id=format!("quick-open-{index}")
                                    role="option"
                                    class="quick-open-item"
                                    aria-selected=move || (highlighted.get() == index).to_string()
                                    on:click=move |_| choose(index)
                                >
                                    {path}
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
        </Modal>
    }
}

/// Two texts side by side in Monaco's diff editor. With an [`super::ApplyTarget`] the right side
/// is editable and "Accept" saves it as a new revision of that file (or creates the file).
#[component]
pub fn DiffDialog(comparison: RwSignal<Option<Comparison>>) -> impl IntoView {
    let open = RwSignal::new(false);
    let host = NodeRef::<leptos::html::Div>::new();
    let saving = RwSignal::new(false);
    Effect::new(move |_| set_if_changed(open, comparison.with(Option::is_some)));
    Effect::new(move |_| {
        if !open.get() {
            set_if_changed(comparison, None);
        }
    });
    let applying = move || {
        comparison.with(|comparison| {
            comparison
                .as_ref()
                .is_some_and(|comparison| comparison.apply.is_some())
        })
    };
    #[cfg(feature = "hydrate")]
    let shown = StoredValue::new_local(None::<crate::editor::Diff>);
    #[cfg(feature = "hydrate")]
    {
        let preferences = crate::preferences::use_preferences();
        Effect::new(move |_| {
            shown.update_value(|slot| {
                if let Some(diff) = slot.take() {
                    diff.dispose();
                }
            });
            let Some(comparison) = comparison.get() else {
                return;
            };
            let Some(element) = host.get() else {
                return;
            };
            let element: &web_sys::HtmlElement = &element;
            shown.set_value(Some(crate::editor::Diff::create(
                element,
                &comparison.left,
                &comparison.right,
                comparison.language.as_deref(),
                super::state::prefers_dark(preferences.theme.get_untracked()),
                comparison.apply.is_some(),
            )));
        });
    }
    let workspace = use_workspace();
    let toaster = use_toaster();
    let accept = move |_| {
        let Some(Comparison {
            apply: Some(target),
            ..
        }) = comparison.get_untracked()
        else {
            return;
        };
        #[cfg(feature = "hydrate")]
        let text = shown.with_value(|diff| diff.as_ref().map(crate::editor::Diff::modified_text));
        #[cfg(not(feature = "hydrate"))]
        let text: Option<String> = None;
        let Some(text) = text else {
            return;
        };
        saving.set(true);
        leptos::task::spawn_local(async move {
            let outcome = super::apply_edit(workspace, target, text).await;
            saving.set(false);
            match outcome {
                Ok(message) => {
                    toaster.show(ToastKind::Success, message);
                    open.set(false);
                }
                Err(message) => toaster.show(ToastKind::Error, message),
            }
        });
    };
    view! {
        <Modal id="diff-dialog" title="Compare" open>
            <p class="dialog-subtitle">{move || comparison.get().map(|comparison| comparison.title).unwrap_or_default()}</p>
            <div class="diff-labels">
                <span>{move || comparison.get().map(|comparison| comparison.left_label).unwrap_or_default()}</span>
                <span>{move || comparison.get().map(|comparison| comparison.right_label).unwrap_or_default()}</span>
            </div>
            <div class="diff-host" node_ref=host></div>
            <div class="dialog-actions">
                <Button variant=ButtonVariant::Secondary on_click=Callback::new(move |_| open.set(false))>
                    {move || if applying() { "Cancel" } else { "Close" }}
                </Button>
                <Show when=applying>
                    <Button
                        id="apply-accept"
                        variant=ButtonVariant::Primary
                        disabled=Signal::derive(move || saving.get())
                        on_click=Callback::new(accept)
                    >
                        {move || if saving.get() { "Saving…" } else { "Accept and save" }}
                    </Button>
                </Show>
            </div>
        </Modal>
    }
}
