//! The workspace page (`/projects/<id>`): file tree, tabs, the Monaco editor, status bar, quick
//! open, project search and file history. Everything loads in the browser after hydration; the
//! server sends the frame only.

mod ansi;
mod assist;
mod panels;
mod run;
mod state;
mod tree;

pub(crate) use assist::apply_edit;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::tasks::TaskNotifier;

#[cfg(feature = "hydrate")]
use crate::api::files::save_file;
use crate::api::files::{
    create_file, create_folder, delete_entry, file_tree, move_entry, open_file,
};
use crate::api::projects::get_project;
use crate::components::{
    AppLayout, Button, ButtonVariant, Input, Modal, ToastKind, set_if_changed, use_toaster,
};
use crate::error::AppError;
use crate::types::OpenedFile;
#[cfg(feature = "hydrate")]
use crate::types::SaveResult;

pub use state::fuzzy_score;
#[cfg(feature = "hydrate")]
pub use state::prefers_dark;
use state::{Remembered, SaveState, Tab, Workspace, use_workspace};
use tree::{FileTree, target_folder};

/// What the path dialog creates or changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PathAction {
    NewFile,
    NewFolder,
    Move,
}

/// A comparison to show in the diff view: `(title, left, right, language)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub title: String,
    pub left_label: String,
    pub right_label: String,
    pub left: String,
    pub right: String,
    pub language: Option<String>,
    /// When set, the right side is editable and accepting it saves it to this file.
    pub apply: Option<ApplyTarget>,
}

/// Where an edit proposed in the chat goes: an existing file (its id and the version the left
/// side shows) or a new one at `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyTarget {
    pub file_id: Option<String>,
    pub path: String,
    pub base_version: i64,
}

/// Whether `path` is a workspace page's (`/projects/<id>`, the route in `App`).
pub fn is_workspace_path(path: &str) -> bool {
    path.strip_prefix("/projects/")
        .map(|rest| rest.strip_suffix('/').unwrap_or(rest))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

#[component]
pub fn WorkspacePage() -> impl IntoView {
    let params = use_params_map();
    let project_id = params.with_untracked(|params| params.get("id").unwrap_or_default());
    let workspace = Workspace::new(project_id);
    provide_context(workspace);
    let load_error = RwSignal::new(None::<AppError>);
    let toaster = use_toaster();
    // Looked up while the server renders, before the page's head is sent (a blocking resource):
    // an unknown project (or another person's) is a 404 page with status 404, not a workspace
    // that fails once it runs. The server function sets the response's status as it refuses.
    let project_check = Resource::new_blocking(
        move || workspace.project_id(),
        |project_id| async move { get_project(project_id).await.map(|_| ()) },
    );
    // Set where the refusal is rendered; hides the workspace (an attribute, so the server's
    // render and the hydrated page may differ in it without a mismatch).
    let project_missing = RwSignal::new(false);
    let failed = move || load_error.with(Option::is_some) || project_missing.get();

    // Load the project and its tree, then bring back the remembered tabs.
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            let project_id = workspace.project_id();
            if project_check
                .get_untracked()
                .is_some_and(|checked| checked.is_err())
            {
                return;
            }
            match get_project(project_id.clone()).await {
                Ok(project) => workspace.project.set(Some(project)),
                Err(error) => {
                    load_error.set(Some(error));
                    return;
                }
            }
            match file_tree(project_id).await {
                Ok(tree) => workspace.tree.set(tree),
                Err(error) => {
                    load_error.set(Some(error));
                    return;
                }
            }
            restore(workspace).await;
        });
    });
    // Remember tabs, active tab and expansion whenever they change (after the restore).
    Effect::new(move |_| {
        workspace.tabs.track();
        workspace.active.track();
        workspace.expanded.track();
        if workspace.restored.get() {
            workspace.remember();
        }
    });

    #[cfg(feature = "hydrate")]
    start_editor(workspace);

    // Leaving with unsaved changes asks first.
    let before_unload = window_event_listener(leptos::ev::beforeunload, move |event| {
        if workspace.any_dirty() {
            event.prevent_default();
            event.set_return_value("You have unsaved changes.");
        }
    });
    on_cleanup(move || before_unload.remove());

    let quick_open = RwSignal::new(false);
    let keys = window_event_listener(leptos::ev::keydown, move |event| {
        let command = event.ctrl_key() || event.meta_key();
        match event.key().to_lowercase().as_str() {
            "p" if command => {
                event.prevent_default();
                quick_open.set(true);
            }
            "s" if command => {
                event.prevent_default();
                save_active(workspace, toaster);
            }
            _ => {}
        }
    });
    on_cleanup(move || keys.remove());

    let path_action = RwSignal::new(None::<PathAction>);
    let deleting = RwSignal::new(false);
    let closing = RwSignal::new(None::<String>);
    let comparison = RwSignal::new(None::<Comparison>);
    let side = RwSignal::new(Side::Files);
    let history_open = RwSignal::new(false);
    // The chat column: as the person left it in this browser, else open on wide screens only
    // (the editor keeps its room on a laptop). Closed in the server's render.
    let chat_open = RwSignal::new(false);
    Effect::new(move |_| {
        let storage = window().local_storage().ok().flatten();
        let remembered = storage
            .as_ref()
            .and_then(|storage| storage.get_item(CHAT_OPEN_KEY).ok().flatten());
        let wide = window()
            .inner_width()
            .ok()
            .and_then(|width| width.as_f64())
            .is_some_and(|width| width >= 1440.0);
        chat_open.set(remembered.map_or(wide, |value| value == "1"));
    });
    let toggle_chat = move |_| {
        let open = !chat_open.get_untracked();
        chat_open.set(open);
        if let Some(storage) = window().local_storage().ok().flatten()
            && storage
                .set_item(CHAT_OPEN_KEY, if open { "1" } else { "0" })
                .is_err()
        {
            leptos::logging::warn!("could not remember whether the chat is open");
        }
    };
    let chat_context = Callback::new(move |()| assist::editor_context(workspace));
    // Text the Run panel attaches to the chat's message ("Send to chat").
    let chat_incoming = RwSignal::new(None::<String>);
    let apply_code = Callback::new(move |request: crate::chat::ApplyRequest| {
        leptos::task::spawn_local(async move {
            if let Err(message) = assist::propose_edit(
                workspace,
                comparison,
                request.path,
                request.code,
                request.language,
            )
            .await
            {
                toaster.show(ToastKind::Error, message);
            }
        });
    });

    // On a phone the workspace shows one pane at a time: files, the editor or the AI.
    let pane = RwSignal::new(Pane::Editor);
    let send_to_chat = Callback::new(move |text: String| {
        chat_incoming.set(Some(text));
        chat_open.set(true);
        pane.set(Pane::Chat);
    });
    let open = Callback::new(move |file_id: String| {
        pane.set(Pane::Editor);
        open_in_tab(workspace, file_id, None)
    });
    let title = move || {
        workspace
            .project
            .get()
            .map(|project| format!("{} · Async Coder", project.name))
            .unwrap_or_else(|| "Workspace · Async Coder".into())
    };

    view! {
        <Title text=title/>
        <AppLayout collapsed=true>
            // The server's answer for the project, rendered from the resource itself (the same
            // on the server and while hydrating); later failures come through `load_error`.
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    project_check.await.err().map(move |error| {
                        project_missing.set(true);
                        load_failure(error, workspace.project_id())
                    })
                })}
            </Suspense>
            {move || load_error.get().map(|error| load_failure(error, workspace.project_id()))}
            <nav class="workspace-panes" aria-label="Workspace panes" class:hidden=move || failed()>
                {[(Pane::Files, "Files"), (Pane::Editor, "Editor"), (Pane::Chat, "AI")]
                    .into_iter()
                    .map(|(choice, label)| {
                        view! {
                            <button
                                type="button"
                                id=format!("pane-{}", choice.name())
                                aria-pressed=move || (pane.get() == choice).to_string()
                                on:click=move |_| {
                                    pane.set(choice);
                                    if choice == Pane::Chat && !chat_open.get_untracked() {
                                        chat_open.set(true);
                                    }
                                }
                            >
                                {label}
                            </button>
                        }
                    })
                    .collect_view()}
            </nav>
            <div
                class="workspace"
                class:hidden=move || failed()
                data-pane=move || pane.get().name()
                // Once the tabs this browser remembers (or a first visit's README) are back.
                data-restored=move || workspace.restored.get().to_string()
            >
                <aside class="workspace-side" aria-label="Project">
                    <div class="workspace-side-header">
                        <a class="workspace-project" href="/projects" title="All projects">
                            {move || workspace.project.get().map(|project| project.name).unwrap_or_default()}
                        </a>
                        <button
                            type="button"
                            id="toggle-chat"
                            class="button button-ghost"
                            aria-pressed=move || chat_open.get().to_string()
                            title="Show or hide the AI chat"
                            on:click=toggle_chat
                        >
                            "AI"
                        </button>
                        <div class="segmented" role="tablist" aria-label="Side panel">
                            <button
                                type="button"
                                role="tab"
                                id="side-files"
                                aria-selected=move || (side.get() == Side::Files).to_string()
                                on:click=move |_| side.set(Side::Files)
                            >
                                "Files"
                            </button>
                            <button
                                type="button"
                                role="tab"
                                id="side-search"
                                aria-selected=move || (side.get() == Side::Search).to_string()
                                on:click=move |_| side.set(Side::Search)
                            >
                                "Search"
                            </button>
                            <button
                                type="button"
                                role="tab"
                                id="side-run"
                                aria-selected=move || (side.get() == Side::Run).to_string()
                                on:click=move |_| side.set(Side::Run)
                            >
                                "Run"
                            </button>
                        </div>
                    </div>
                    <div class="workspace-side-body" class:hidden=move || side.get() != Side::Files>
                        <div class="tree-toolbar">
                            <Button
                                id="new-file"
                                variant=ButtonVariant::Ghost
                                title="New file"
                                on_click=Callback::new(move |_| path_action.set(Some(PathAction::NewFile)))
                            >
                                "+ File"
                            </Button>
                            <Button
                                id="new-folder"
                                variant=ButtonVariant::Ghost
                                title="New folder"
                                on_click=Callback::new(move |_| path_action.set(Some(PathAction::NewFolder)))
                            >
                                "+ Folder"
                            </Button>
                            <Button
                                id="move-entry"
                                variant=ButtonVariant::Ghost
                                title="Rename or move the selected entry (F2)"
                                disabled=Signal::derive(move || workspace.selected.get().is_none())
                                on_click=Callback::new(move |_| path_action.set(Some(PathAction::Move)))
                            >
                                "Rename"
                            </Button>
                            <Button
                                id="delete-entry"
                                variant=ButtonVariant::Ghost
                                title="Delete the selected entry (Delete)"
                                disabled=Signal::derive(move || workspace.selected.get().is_none())
                                on_click=Callback::new(move |_| deleting.set(true))
                            >
                                "Delete"
                            </Button>
                        </div>
                        <FileTree
                            on_open=open
                            on_rename=Callback::new(move |()| {
                                if workspace.selected.get_untracked().is_some() {
                                    path_action.set(Some(PathAction::Move));
                                }
                            })
                            on_delete=Callback::new(move |()| {
                                if workspace.selected.get_untracked().is_some() {
                                    deleting.set(true);
                                }
                            })
                        />
                    </div>
                    <div class="workspace-side-body" class:hidden=move || side.get() != Side::Search>
                        <panels::SearchPanel/>
                    </div>
                    <div class="workspace-side-body" class:hidden=move || side.get() != Side::Run>
                        <Show when=move || side.get() == Side::Run>
                            <run::RunPanel workspace to_chat=send_to_chat/>
                        </Show>
                    </div>
                </aside>
                <PanelResizer
                    id="resize-side"
                    label="Resize the project panel"
                    storage_key="async-coder:width:side"
                    variable="--side-width"
                    direction=1.0
                    range=(160.0, 480.0)
                />
                <section class="workspace-main" aria-label="Editor">
                    <Tabs closing/>
                    <ConflictBar comparison/>
                    <EditorArea/>
                    <StatusBar history_open/>
                </section>
                <Show when=move || history_open.get()>
                    <panels::HistoryPanel open=history_open comparison/>
                </Show>
                <Show when=move || chat_open.get()>
                    <PanelResizer
                        id="resize-chat"
                        label="Resize the AI panel"
                        storage_key="async-coder:width:chat"
                        variable="--chat-width"
                        direction=-1.0
                        range=(260.0, 720.0)
                    />
                </Show>
                <aside class="workspace-chat" class:hidden=move || !chat_open.get() aria-label="AI">
                    <crate::chat::ChatPanel
                        project_id=workspace.project_id()
                        context=chat_context
                        on_apply=apply_code
                        incoming=chat_incoming
                    />
                </aside>
            </div>
            <PathDialog action=path_action/>
            <DeleteDialog open=deleting/>
            <CloseDialog closing/>
            <panels::QuickOpen open=quick_open/>
            <panels::DiffDialog comparison/>
            <TaskNotifier/>
        </AppLayout>
    }
}

/// Where this browser remembers whether the chat column is open.
const CHAT_OPEN_KEY: &str = "async-coder:chat-open";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Files,
    Search,
    Run,
}

/// Reopens the remembered tabs (those whose files still exist) and expansion.
async fn restore(workspace: Workspace) {
    // A browser that has never had this project open starts with its README, if it has one.
    let remembered = workspace.remembered().unwrap_or_else(|| {
        let readme = workspace
            .tree
            .with_untracked(|tree| state::first_visit_file(tree).map(|file| file.id.clone()));
        Remembered {
            tabs: readme.iter().cloned().collect(),
            active: readme,
            expanded: Vec::new(),
        }
    });
    let (folders, files): (std::collections::BTreeSet<String>, Vec<String>) =
        workspace.tree.with_untracked(|tree| {
            (
                tree.folders.iter().cloned().collect(),
                tree.files.iter().map(|file| file.id.clone()).collect(),
            )
        });
    workspace.expanded.set(
        remembered
            .expanded
            .into_iter()
            .filter(|path| folders.contains(path))
            .collect(),
    );
    for file_id in remembered.tabs.iter().filter(|id| files.contains(id)) {
        match open_file(workspace.project_id(), file_id.clone()).await {
            Ok(file) => workspace
                .tabs
                .update(|tabs| tabs.push(Tab::from_opened(file))),
            Err(error) => leptos::logging::warn!("could not reopen a tab: {error}"),
        }
    }
    let active = remembered
        .active
        .filter(|active| {
            workspace
                .tabs
                .with_untracked(|tabs| tabs.iter().any(|tab| &tab.file_id == active))
        })
        .or_else(|| {
            workspace
                .tabs
                .with_untracked(|tabs| tabs.first().map(|tab| tab.file_id.clone()))
        });
    workspace.active.set(active);
    workspace.restored.set(true);
}

/// Opens a file in a tab (or switches to its tab), optionally at a line.
pub fn open_in_tab(workspace: Workspace, file_id: String, at: Option<(u32, u32)>) {
    if let Some((line, column)) = at {
        workspace
            .pending_reveal
            .set(Some((file_id.clone(), line, column)));
    }
    if workspace
        .tabs
        .with_untracked(|tabs| tabs.iter().any(|tab| tab.file_id == file_id))
    {
        workspace.active.set(Some(file_id));
        return;
    }
    leptos::task::spawn_local(async move {
        match open_file(workspace.project_id(), file_id.clone()).await {
            Ok(file) => {
                workspace
                    .tabs
                    .update(|tabs| tabs.push(Tab::from_opened(file)));
                workspace.active.set(Some(file_id));
            }
            Err(error) => use_toaster_or_log(error.to_string()),
        }
    });
}

fn use_toaster_or_log(message: String) {
    match use_context::<crate::components::Toaster>() {
        Some(toaster) => toaster.show(ToastKind::Error, message),
        None => leptos::logging::error!("{message}"),
    }
}

/// Saves the active tab's text, based on the version it was loaded or last saved at.
pub fn save_active(workspace: Workspace, toaster: crate::components::Toaster) {
    let Some(tab) = workspace.active_tab_untracked() else {
        return;
    };
    save_tab(workspace, toaster, tab, None);
}

/// Saves `tab`; `based_on` overrides its version ("keep mine" after a conflict). The text lives
/// in the browser's editor, so on the server this does nothing.
#[cfg_attr(not(feature = "hydrate"), allow(unused_variables))]
fn save_tab(
    workspace: Workspace,
    toaster: crate::components::Toaster,
    tab: Tab,
    based_on: Option<i64>,
) {
    #[cfg(feature = "hydrate")]
    {
        use crate::editor::models;
        if tab.binary || tab.state == SaveState::Saving {
            return;
        }
        let uri = tab.uri();
        let Some(text) = models::text(&uri) else {
            return;
        };
        let mark = models::version(&uri);
        let base = based_on.unwrap_or(tab.base_version);
        let file_id = tab.file_id.clone();
        workspace.update_tab(&file_id, |tab| tab.state = SaveState::Saving);
        leptos::task::spawn_local(async move {
            let result = save_file(
                workspace.project_id(),
                file_id.clone(),
                base.to_string(),
                text,
            )
            .await;
            match result {
                Ok(SaveResult::Saved { version }) => {
                    models::mark_saved(&uri, mark);
                    let dirty = models::is_dirty(&uri);
                    workspace.update_tab(&file_id, |tab| {
                        tab.base_version = version;
                        tab.dirty = dirty;
                        tab.state = SaveState::Idle;
                    });
                    refresh_tree(workspace);
                }
                // The conflict bar says it, with its actions; a toast would cover them.
                Ok(SaveResult::Conflict { current }) => {
                    workspace.update_tab(&file_id, |tab| tab.state = SaveState::Conflict(current));
                }
                Err(error) => {
                    let message = error.to_string();
                    workspace.update_tab(&file_id, |tab| {
                        tab.state = SaveState::Failed(message.clone())
                    });
                    toaster.show(ToastKind::Error, format!("Not saved: {message}"));
                }
            }
        });
    }
}

/// Reloads the tree (sizes, versions, paths after a move).
pub fn refresh_tree(workspace: Workspace) {
    leptos::task::spawn_local(async move {
        match file_tree(workspace.project_id()).await {
            Ok(tree) => {
                // Tabs follow their files: a moved file keeps its tab, a deleted one loses it.
                workspace.tabs.update(|tabs| {
                    tabs.retain(|tab| tree.files.iter().any(|file| file.id == tab.file_id));
                    for tab in tabs.iter_mut() {
                        if let Some(file) = tree.files.iter().find(|file| file.id == tab.file_id)
                            && file.path != tab.path
                        {
                            tab.path = file.path.clone();
                        }
                    }
                });
                let active_exists = workspace.active.with_untracked(|active| {
                    active.as_ref().is_none_or(|active| {
                        workspace
                            .tabs
                            .with_untracked(|tabs| tabs.iter().any(|tab| &tab.file_id == active))
                    })
                });
                if !active_exists {
                    workspace.active.set(
                        workspace
                            .tabs
                            .with_untracked(|tabs| tabs.last().map(|tab| tab.file_id.clone())),
                    );
                }
                workspace.tree.set(tree);
            }
            Err(error) => use_toaster_or_log(error.to_string()),
        }
    });
}

/// Creates the Monaco editor once its files are loaded (after the page is interactive), and
/// keeps it showing the active tab, in the app's theme and font size.
#[cfg(feature = "hydrate")]
fn start_editor(workspace: Workspace) {
    use crate::editor::{self, Editor, EditorEvents, models};
    let preferences = crate::preferences::use_preferences();
    let toaster = use_toaster();
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            if let Err(error) = editor::load().await {
                workspace.editor_error.set(Some(format!(
                    "The editor could not be loaded ({error}). Reload the page to try again."
                )));
                return;
            }
            let Some(element) = document()
                .get_element_by_id("monaco-host")
                .and_then(|element| {
                    wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(element).ok()
                })
            else {
                return;
            };
            let created = Editor::create(
                &element,
                u32::from(preferences.editor_font_size.get_untracked()),
                state::prefers_dark(preferences.theme.get_untracked()),
                EditorEvents {
                    on_save: Box::new(move || save_active(workspace, toaster)),
                    on_change: Box::new(move |uri: String| {
                        let dirty = models::is_dirty(&uri);
                        let file_id = uri.trim_start_matches("inmemory://file/").to_owned();
                        let changed = workspace.tabs.with_untracked(|tabs| {
                            tabs.iter()
                                .any(|tab| tab.file_id == file_id && tab.dirty != dirty)
                        });
                        if changed {
                            workspace.update_tab(&file_id, |tab| tab.dirty = dirty);
                        }
                    }),
                    on_cursor: Box::new(move |line, column| workspace.cursor.set((line, column))),
                },
            );
            workspace
                .editor
                .set_value(Some(send_wrapper::SendWrapper::new(created)));
            workspace.editor_ready.set(true);
        });
    });
    // Show the active tab's model.
    Effect::new(move |_| {
        if !workspace.editor_ready.get() {
            return;
        }
        let Some(tab) = workspace.active_tab() else {
            return;
        };
        if tab.binary {
            return;
        }
        let Some(editor) = workspace.editor.get_value() else {
            return;
        };
        let uri = tab.uri();
        let cursor = editor.show(&uri, &tab.loaded_text, tab.language.as_deref());
        workspace.cursor.set(cursor);
        // The early editor's model may hold what was typed before the app ran.
        let dirty = models::is_dirty(&uri);
        if dirty != tab.dirty {
            workspace.update_tab(&tab.file_id, |tab| tab.dirty = dirty);
        }
        if let Some((file_id, line, column)) = workspace.pending_reveal.get()
            && file_id == tab.file_id
        {
            editor.reveal(line, column);
            workspace.pending_reveal.set(None);
        }
    });
    Effect::new(move |_| {
        let dark = state::prefers_dark(preferences.theme.get());
        if workspace.editor_ready.get() {
            models::set_theme(dark);
        }
    });
    Effect::new(move |_| {
        let size = u32::from(preferences.editor_font_size.get());
        if workspace.editor_ready.get()
            && let Some(editor) = workspace.editor.get_value()
        {
            editor.set_font_size(size);
        }
    });
    on_cleanup(move || {
        if let Some(editor) = workspace.editor.get_value() {
            editor.dispose();
        }
        for tab in workspace.tabs.get_untracked() {
            models::dispose(&tab.uri());
        }
    });
}

#[component]
fn Tabs(closing: RwSignal<Option<String>>) -> impl IntoView {
    let workspace = use_workspace();
    let close = move |file_id: String| {
        let dirty = workspace
            .tabs
            .with_untracked(|tabs| tabs.iter().any(|tab| tab.file_id == file_id && tab.dirty));
        if dirty {
            closing.set(Some(file_id));
        } else {
            close_tab(workspace, &file_id);
        }
    };
    view! {
        <div class="tabs" role="tablist" aria-label="Open files">
            <For
                each=move || workspace.tabs.get()
                key=|tab| (tab.file_id.clone(), tab.path.clone(), tab.dirty, tab.status())
                let:tab
            >
                {
                    let file_id = tab.file_id.clone();
                    let for_click = file_id.clone();
                    let for_close = file_id.clone();
                    let for_middle = file_id.clone();
                    let is_active = move || workspace.active.get().as_deref() == Some(file_id.as_str());
                    view! {
                        <div
                            class="tab"
                            class:active=is_active.clone()
                            role="tab"
                            aria-selected=move || is_active().to_string()
                            title=tab.path.clone()
                            data-path=tab.path.clone()
                            on:click=move |_| workspace.active.set(Some(for_click.clone()))
                            on:auxclick=move |event: leptos::ev::MouseEvent| {
                                if event.button() == 1 {
                                    close(for_middle.clone());
                                }
                            }
                        >
                            <span class="tab-name">{tab.name().to_owned()}</span>
                            <span
                                class="tab-dirty"
                                aria-label=if tab.dirty { "unsaved changes" } else { "" }
                                hidden=!tab.dirty
                            >
                                "●"
                            </span>
                            <button
                                type="button"
                                class="tab-close"
                                aria-label=format!("Close {}", tab.name())
                                on:click=move |event| {
                                    event.stop_propagation();
                                    close(for_close.clone());
                                }
                            >
                                "×"
                            </button>
                        </div>
                    }
                }
            </For>
        </div>
    }
}

fn close_tab(workspace: Workspace, file_id: &str) {
    #[cfg(feature = "hydrate")]
    crate::editor::models::dispose(&crate::editor::model_uri(file_id));
    let mut next = None;
    workspace.tabs.update(|tabs| {
        if let Some(index) = tabs.iter().position(|tab| tab.file_id == file_id) {
            tabs.remove(index);
            next = tabs
                .get(index)
                .or_else(|| tabs.last())
                .map(|tab| tab.file_id.clone());
        }
    });
    if workspace.active.get_untracked().as_deref() == Some(file_id) {
        workspace.active.set(next);
    }
}

/// Shown while the active tab is in conflict: compare, keep mine, take theirs.
#[component]
fn ConflictBar(comparison: RwSignal<Option<Comparison>>) -> impl IntoView {
    let workspace = use_workspace();
    let toaster = use_toaster();
    let conflict = move || {
        workspace.active_tab().and_then(|tab| match &tab.state {
            SaveState::Conflict(current) => Some((tab.clone(), current.clone())),
            _ => None,
        })
    };
    view! {
        {move || {
            conflict()
                .map(|(tab, current)| {
                    let for_compare = (tab.clone(), current.clone());
                    let for_keep = (tab.clone(), current.clone());
                    let for_take = (tab.clone(), current.clone());
                    view! {
                        <div class="conflict-bar" role="alert">
                            <span>
                                {format!(
                                    "{} was saved elsewhere (now version {}) since you opened it. Nothing was overwritten.",
                                    tab.path,
                                    current.version,
                                )}
                            </span>
                            <Button
                                id="conflict-compare"
                                variant=ButtonVariant::Secondary
                                on_click=Callback::new(move |_| {
                                    let (tab, current) = for_compare.clone();
                                    comparison.set(Some(conflict_comparison(&tab, &current)));
                                })
                            >
                                "Compare"
                            </Button>
                            <Button
                                id="conflict-keep-mine"
                                on_click=Callback::new(move |_| {
                                    let (tab, current) = for_keep.clone();
                                    let mut tab = tab;
                                    tab.state = SaveState::Idle;
                                    save_tab(workspace, toaster, tab, Some(current.version));
                                })
                            >
                                "Keep mine"
                            </Button>
                            <Button
                                id="conflict-take-theirs"
                                variant=ButtonVariant::Secondary
                                on_click=Callback::new(move |_| {
                                    let (tab, current) = for_take.clone();
                                    take_theirs(workspace, &tab, &current);
                                })
                            >
                                "Take theirs"
                            </Button>
                        </div>
                    }
                })
        }}
    }
}

fn conflict_comparison(tab: &Tab, current: &OpenedFile) -> Comparison {
    #[cfg(feature = "hydrate")]
    let mine = crate::editor::models::text(&tab.uri()).unwrap_or_default();
    #[cfg(not(feature = "hydrate"))]
    let mine = tab.loaded_text.clone();
    Comparison {
        title: format!("{}: saved version {} and yours", tab.path, current.version),
        left_label: format!("Saved (version {})", current.version),
        right_label: "Yours (not saved)".into(),
        left: current.content.clone().unwrap_or_default(),
        right: mine,
        language: tab.language.clone(),
        apply: None,
    }
}

/// Replaces the editor's text with the saved one and continues from its version.
fn take_theirs(workspace: Workspace, tab: &Tab, current: &OpenedFile) {
    let text = current.content.clone().unwrap_or_default();
    #[cfg(feature = "hydrate")]
    {
        use crate::editor::models;
        let uri = tab.uri();
        models::replace_text(&uri, &text);
        models::mark_saved(&uri, models::version(&uri));
    }
    let version = current.version;
    workspace.update_tab(&tab.file_id, |tab| {
        tab.base_version = version;
        tab.loaded_text = text;
        tab.dirty = false;
        tab.state = SaveState::Idle;
    });
}

/// What the workspace shows instead of itself when its project cannot be loaded.
fn load_failure(error: AppError, project_id: String) -> impl IntoView {
    let (code, message) = match error {
        AppError::Unauthorized => ("401", "Sign in to open this project.".to_owned()),
        AppError::NotFound => (
            "404",
            "This project does not exist, or it is not yours.".to_owned(),
        ),
        other => ("", other.to_string()),
    };
    let sign_in = format!("/sign-in?next=/projects/{project_id}");
    view! {
        <div class="message-page workspace-failure">
            <p class="message-code">{code}</p>
            <h1 role="alert">{message}</h1>
            <p>
                {(code == "401")
                    .then(|| {
                        view! {
                            <a class="button button-primary" href=sign_in>"Sign in"</a>
                            " "
                        }
                    })}
                <a href="/projects">"Back to your projects"</a>
            </p>
        </div>
    }
}

/// The pane a phone shows (wider screens show them side by side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pane {
    Files,
    Editor,
    Chat,
}

impl Pane {
    fn name(self) -> &'static str {
        match self {
            Pane::Files => "files",
            Pane::Editor => "editor",
            Pane::Chat => "chat",
        }
    }
}

/// A vertical separator between two workspace columns: dragged with the pointer or moved with
/// the arrow keys (Home and End for the extremes), it sets the width of the column on its left
/// (`direction` 1) or right (-1) as the CSS variable `variable` on the workspace, within `range`
/// pixels, and the browser remembers it.
#[component]
fn PanelResizer(
    id: &'static str,
    label: &'static str,
    storage_key: &'static str,
    variable: &'static str,
    direction: f64,
    range: (f64, f64),
) -> impl IntoView {
    let width = RwSignal::new(None::<f64>);
    let drag = StoredValue::new(None::<(f64, f64)>);
    let element = NodeRef::<leptos::html::Div>::new();
    let storage = || window().local_storage().ok().flatten();
    let apply = move |value: f64| {
        let value = value.clamp(range.0, range.1).round();
        width.set(Some(value));
        if let Some(workspace) = document().query_selector(".workspace").ok().flatten()
            && let Ok(workspace) = wasm_element(workspace)
            && workspace
                .style()
                .set_property(variable, &format!("{value}px"))
                .is_err()
        {
            leptos::logging::warn!("could not set {variable}");
        }
    };
    let remember = move || {
        if let (Some(storage), Some(value)) = (storage(), width.get_untracked())
            && storage.set_item(storage_key, &value.to_string()).is_err()
        {
            leptos::logging::warn!("could not remember a panel's width");
        }
    };
    // The remembered width, once the page is live.
    Effect::new(move |_| {
        if let Some(value) = storage()
            .and_then(|storage| storage.get_item(storage_key).ok().flatten())
            .and_then(|text| text.parse::<f64>().ok())
        {
            apply(value);
        }
    });
    // The current width of the column this separator resizes.
    let column_width = move || {
        width.get_untracked().unwrap_or_else(|| {
            element
                .get_untracked()
                .and_then(|separator| {
                    let column = if direction > 0.0 {
                        separator.previous_element_sibling()
                    } else {
                        separator.next_element_sibling()
                    }?;
                    Some(f64::from(column.client_width()))
                })
                .unwrap_or(range.0)
        })
    };
    let moves = window_event_listener(leptos::ev::pointermove, move |event| {
        if let Some((start_x, start_width)) = drag.get_value() {
            apply(start_width + direction * (f64::from(event.client_x()) - start_x));
        }
    });
    let ups = window_event_listener(leptos::ev::pointerup, move |_| {
        if drag.get_value().is_some() {
            drag.set_value(None);
            remember();
        }
    });
    on_cleanup(move || {
        moves.remove();
        ups.remove();
    });
    view! {
        <div
            id=id
            node_ref=element
            class="panel-resizer"
            role="separator"
            aria-orientation="vertical"
            aria-label=label
            aria-valuemin=range.0
            aria-valuemax=range.1
            aria-valuenow=move || width.get().map(|value| value.to_string())
            tabindex="0"
            on:pointerdown=move |event| {
                event.prevent_default();
                drag.set_value(Some((f64::from(event.client_x()), column_width())));
            }
            on:keydown=move |event| {
                let step = if event.shift_key() { 64.0 } else { 16.0 };
                let current = column_width();
                let next = match event.key().as_str() {
                    "ArrowLeft" => current - direction * step,
                    "ArrowRight" => current + direction * step,
                    "Home" => range.0,
                    "End" => range.1,
                    _ => return,
                };
                event.prevent_default();
                apply(next);
                remember();
            }
        ></div>
    }
}

fn wasm_element(
    element: leptos::web_sys::Element,
) -> Result<leptos::web_sys::HtmlElement, leptos::web_sys::Element> {
    use leptos::wasm_bindgen::JsCast;
    element.dyn_into::<leptos::web_sys::HtmlElement>()
}

#[component]
fn EditorArea() -> impl IntoView {
    let workspace = use_workspace();
    let binary = move || workspace.active_tab().filter(|tab| tab.binary);
    let empty = move || workspace.tabs.with(Vec::is_empty);
    let project_is_empty = move || {
        workspace.project.with(Option::is_some)
            && workspace
                .tree
                .with(|tree| tree.files.is_empty() && tree.folders.is_empty())
    };
    view! {
        <div class="editor-area">
            <div
                id="monaco-host"
                class="monaco-host"
                class:hidden=move || empty() || binary().is_some()
            ></div>
            {move || {
                binary()
                    .map(|tab| {
                        view! {
                            <div class="editor-message" role="status">
                                <p>
                                    <strong>{tab.path.clone()}</strong>
                                    {format!(" is a binary file ({} bytes); it is kept as it is and not shown in the editor.", tab.size_bytes)}
                                </p>
                                <p>"Export the project to get it."</p>
                            </div>
                        }
                    })
            }}
            <Show when=move || empty() && !project_is_empty()>
                <div class="editor-message">
                    <p>"Open a file from the tree, or press Ctrl+P (⌘P) to find one by name."</p>
                </div>
            </Show>
            <Show when=move || empty() && project_is_empty()>
                <div class="editor-message empty-project" id="empty-project">
                    <h2>"This project is empty"</h2>
                    <p>"Three ways to start:"</p>
                    <ul>
                        <li>"Create a file with " <strong>"+ File"</strong> " at the top of the file tree."</li>
                        <li>"Bring existing code: " <a href="/projects">"import a .zip or .tar.gz"</a> " as a new project."</li>
                        <li>"Ask the AI: open the " <strong>"AI"</strong> " panel and describe what to build; apply its code blocks as files."</li>
                    </ul>
                </div>
            </Show>
            {move || {
                workspace
                    .editor_error
                    .get()
                    .map(|error| view! { <div class="editor-message" role="alert">{error}</div> })
            }}
            <Show when=move || !workspace.editor_ready.get() && !empty() && workspace.editor_error.with(Option::is_none)>
                <div class="editor-message" role="status">"Loading the editor…"</div>
            </Show>
        </div>
    }
}

/// The project's context index: its progress while it is built (asked again every second until
/// ready), then how many files it holds.
#[component]
fn IndexStatus() -> impl IntoView {
    let workspace = use_workspace();
    let state = RwSignal::new(None::<crate::types::IndexState>);
    #[cfg(feature = "hydrate")]
    {
        let project = workspace.project_id();
        let alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = alive.clone();
        on_cleanup(move || flag.store(false, std::sync::atomic::Ordering::Relaxed));
        leptos::task::spawn_local(async move {
            loop {
                let found = crate::api::chat::context_index_state(project.clone()).await;
                if !alive.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let settled = match found {
                    Ok(found) => {
                        let settled = found.phase == "ready" || found.phase == "failed";
                        state.set(Some(found));
                        settled
                    }
                    Err(error) => {
                        leptos::logging::warn!("context index: {error}");
                        break;
                    }
                };
                // Every second while it is built, then now and then (saves change the count).
                sleep_milliseconds(if settled { 15_000 } else { 1000 }).await;
                if !alive.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _unused = &workspace;
    view! {
        <span id="status-index" class="status-index" data-phase=move || state.get().map(|state| state.phase).unwrap_or_default()
            title=move || state.get().map(|state| format!("Context index: {} files indexed, {} left out", state.files, state.excluded)).unwrap_or_default()>
            {move || state.get().map(|state| match state.phase.as_str() {
                "loading" => "Index: reading…".to_owned(),
                "indexing" => format!("Indexing {} / {}", state.done, state.total),
                "failed" => "Index: out of date".to_owned(),
                _ => format!("Index: {} files", state.files),
            })}
        </span>
    }
}

/// Waits `milliseconds` in the browser.
#[cfg(feature = "hydrate")]
async fn sleep_milliseconds(milliseconds: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if let Some(window) = web_sys::window()
            && let Err(error) =
                window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, milliseconds)
        {
            leptos::logging::warn!("set_timeout failed: {error:?}");
        }
    });
    if let Err(error) = wasm_bindgen_futures::JsFuture::from(promise).await {
        leptos::logging::warn!("timer failed: {error:?}");
    }
}

#[component]
fn StatusBar(history_open: RwSignal<bool>) -> impl IntoView {
    let workspace = use_workspace();
    let tab = move || workspace.active_tab();
    view! {
        <footer class="status-bar" aria-label="Status">
            <span id="status-save" role="status" data-state=move || tab().map(|tab| tab.status()).unwrap_or("")>
                {move || tab().map(|tab| tab.status()).unwrap_or("")}
            </span>
            <span id="status-language">
                {move || tab().map(|tab| tab.language.unwrap_or_else(|| "plain text".into())).unwrap_or_default()}
            </span>
            <span id="status-cursor">
                {move || {
                    tab()
                        .filter(|tab| !tab.binary)
                        .map(|_| {
                            let (line, column) = workspace.cursor.get();
                            format!("Ln {line}, Col {column}")
                        })
                        .unwrap_or_default()
                }}
            </span>
            <span class="status-spacer"></span>
            <IndexStatus/>
            <button
                type="button"
                id="toggle-history"
                class="status-button"
                disabled=move || tab().is_none()
                aria-pressed=move || history_open.get().to_string()
                on:click=move |_| history_open.update(|open| *open = !*open)
            >
                "History"
            </button>
        </footer>
    }
}

/// New file, new folder, rename/move: one path field, checked by the server.
#[component]
fn PathDialog(action: RwSignal<Option<PathAction>>) -> impl IntoView {
    let workspace = use_workspace();
    let toaster = use_toaster();
    let open = RwSignal::new(false);
    let path = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        let Some(current) = action.get() else {
            set_if_changed(open, false);
            return;
        };
        let selected = workspace.selected.get_untracked();
        let folder = workspace
            .tree
            .with_untracked(|tree| target_folder(selected.as_deref(), tree));
        path.set(match current {
            PathAction::Move => selected.unwrap_or_default(),
            _ if folder.is_empty() => String::new(),
            _ => format!("{folder}/"),
        });
        error.set(None);
        open.set(true);
    });
    Effect::new(move |_| {
        if !open.get() {
            set_if_changed(action, None);
        }
    });
    let submit = move || {
        let Some(current) = action.get_untracked() else {
            return;
        };
        let project = workspace.project_id();
        let target = path.get_untracked();
        let from = workspace.selected.get_untracked().unwrap_or_default();
        leptos::task::spawn_local(async move {
            let result = match current {
                PathAction::NewFile => {
                    create_file(project, target, String::new())
                        .await
                        .map(|file| {
                            let id = file.id.clone();
                            workspace.selected.set(Some(file.path.clone()));
                            reveal_in_tree(workspace, &file.path);
                            open_in_tab(workspace, id, None);
                            file.path
                        })
                }
                PathAction::NewFolder => create_folder(project, target).await.inspect(|created| {
                    workspace.selected.set(Some(created.clone()));
                    reveal_in_tree(workspace, created);
                    workspace.expanded.update(|expanded| {
                        expanded.insert(created.clone());
                    });
                }),
                PathAction::Move => {
                    move_entry(project, from.clone(), target)
                        .await
                        .inspect(|moved| {
                            workspace.selected.set(Some(moved.clone()));
                            reveal_in_tree(workspace, moved);
                            let was_expanded = workspace
                                .expanded
                                .with_untracked(|expanded| expanded.contains(&from));
                            if was_expanded {
                                workspace.expanded.update(|expanded| {
                                    expanded.insert(moved.clone());
                                });
                            }
                        })
                }
            };
            match result {
                Ok(done) => {
                    open.set(false);
                    refresh_tree(workspace);
                    let verb = match current {
                        PathAction::NewFile => "Created",
                        PathAction::NewFolder => "Created folder",
                        PathAction::Move => "Moved to",
                    };
                    toaster.show(ToastKind::Success, format!("{verb} {done}."));
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    let label = move || match action.get() {
        Some(PathAction::NewFolder) => "Folder path",
        Some(PathAction::Move) => "New path",
        _ => "File path",
    };
    view! {
        <Modal id="path-dialog" title="File or folder" open>
            <form
                novalidate
                on:submit=move |event| {
                    event.prevent_default();
                    submit();
                }
            >
                <p class="dialog-subtitle">{label}</p>
                <Input
                    id="path-input"
                    label="Path in the project"
                    value=path
                    placeholder="src/main.rs"
                    error=Signal::derive(move || error.get())
                />
                <div class="dialog-actions">
                    <Button variant=ButtonVariant::Secondary on_click=Callback::new(move |_| open.set(false))>
                        "Cancel"
                    </Button>
                    <Button kind="submit" id="path-submit">"OK"</Button>
                </div>
            </form>
        </Modal>
    }
}

/// Expands every folder above `path`.
fn reveal_in_tree(workspace: Workspace, path: &str) {
    let folders: Vec<String> = path
        .match_indices('/')
        .map(|(index, _)| path[..index].to_owned())
        .collect();
    workspace
        .expanded
        .update(|expanded| expanded.extend(folders));
}

#[component]
fn DeleteDialog(open: RwSignal<bool>) -> impl IntoView {
    let workspace = use_workspace();
    let toaster = use_toaster();
    let error = RwSignal::new(None::<String>);
    let confirm = move |_| {
        let Some(path) = workspace.selected.get_untracked() else {
            open.set(false);
            return;
        };
        leptos::task::spawn_local(async move {
            match delete_entry(workspace.project_id(), path.clone()).await {
                Ok(()) => {
                    open.set(false);
                    error.set(None);
                    workspace.selected.set(None);
                    refresh_tree(workspace);
                    toaster.show(ToastKind::Success, format!("Deleted {path}."));
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    view! {
        <Modal id="delete-dialog" title="Delete" open>
            <p>
                "Delete "
                <strong>{move || workspace.selected.get().unwrap_or_default()}</strong>
                "? A folder is deleted with everything in it, and the files' history goes with them."
            </p>
            {move || error.get().map(|text| view! { <p class="form-error" role="alert">{text}</p> })}
            <div class="dialog-actions">
                <Button variant=ButtonVariant::Secondary on_click=Callback::new(move |_| open.set(false))>
                    "Cancel"
                </Button>
                <Button id="confirm-delete" variant=ButtonVariant::Danger on_click=Callback::new(confirm)>
                    "Delete"
                </Button>
            </div>
        </Modal>
    }
}

/// Closing a tab with unsaved changes: save, discard or keep it open.
#[component]
fn CloseDialog(closing: RwSignal<Option<String>>) -> impl IntoView {
    let workspace = use_workspace();
    let toaster = use_toaster();
    let open = RwSignal::new(false);
    Effect::new(move |_| set_if_changed(open, closing.get().is_some()));
    Effect::new(move |_| {
        if !open.get() {
            set_if_changed(closing, None);
        }
    });
    let name = move || {
        closing.get().and_then(|file_id| {
            workspace.tabs.with(|tabs| {
                tabs.iter()
                    .find(|tab| tab.file_id == file_id)
                    .map(|tab| tab.path.clone())
            })
        })
    };
    view! {
        <Modal id="close-dialog" title="Unsaved changes" open>
            <p>
                <strong>{name}</strong>
                " has changes that are not saved. Save them before closing?"
            </p>
            <div class="dialog-actions">
                <Button variant=ButtonVariant::Secondary on_click=Callback::new(move |_| open.set(false))>
                    "Cancel"
                </Button>
                <Button
                    id="close-discard"
                    variant=ButtonVariant::Danger
                    on_click=Callback::new(move |_| {
                        if let Some(file_id) = closing.get_untracked() {
                            close_tab(workspace, &file_id);
                        }
                        open.set(false);
                    })
                >
                    "Discard changes"
                </Button>
                <Button
                    id="close-save"
                    on_click=Callback::new(move |_| {
                        if let Some(file_id) = closing.get_untracked() {
                            workspace.active.set(Some(file_id));
                            save_active(workspace, toaster);
                        }
                        open.set(false);
                    })
                >
                    "Save"
                </Button>
            </div>
        </Modal>
    }
}

#[cfg(test)]
mod path_tests {
    use super::is_workspace_path;

    #[test]
    fn only_a_single_project_segment_is_a_workspace_page() {
        assert!(is_workspace_path(
            "/projects/0193f0c2-1d2e-7a3b-8c4d-5e6f7a8b9c0d"
        ));
        assert!(is_workspace_path("/projects/abc/"));
        assert!(!is_workspace_path("/projects"));
        assert!(!is_workspace_path("/projects/"));
        assert!(!is_workspace_path("/projects/abc/files"));
        assert!(!is_workspace_path("/"));
        assert!(!is_workspace_path("/chat"));
    }
}
