use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::projects::{create_project, delete_project, list_projects, update_project};
use crate::components::{
    AppLayout, Button, ButtonVariant, Input, LocalTime, Modal, ToastKind, set_if_changed,
    use_toaster,
};
use crate::error::AppError;
use crate::tasks::TaskNotifier;
use crate::types::ProjectSummary;

/// What the project dialog is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Editing {
    New,
    Existing(ProjectSummary),
}

/// The dashboard: the signed-in person's projects, to create, edit, delete, import and open.
/// The list loads in the browser once the page is live.
#[component]
pub fn ProjectsPage() -> impl IntoView {
    let projects = RwSignal::new(None::<Result<Vec<ProjectSummary>, AppError>>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            projects.set(Some(list_projects().await));
        });
    };
    Effect::new(move |_| reload());

    let editing = RwSignal::new(None::<Editing>);
    let deleting = RwSignal::new(None::<ProjectSummary>);
    let importing = RwSignal::new(false);

    view! {
        <Title text="Projects · Async Coder"/>
        <AppLayout>
            <div class="page wide">
                <div class="page-heading">
                    <h1>"Projects"</h1>
                    <div class="page-actions">
                        <Button
                            id="import-project"
                            variant=ButtonVariant::Secondary
                            on_click=Callback::new(move |_| importing.set(true))
                        >
                            "Import .zip or .tar.gz"
                        </Button>
                        <Button
                            id="new-project"
                            on_click=Callback::new(move |_| editing.set(Some(Editing::New)))
                        >
                            "New project"
                        </Button>
                    </div>
                </div>
                {move || match projects.get() {
                    None => view! { <p>"Loading…"</p> }.into_any(),
                    Some(Err(AppError::Unauthorized)) => {
                        view! {
                            <p>
                                "Sign in to see your projects. "
                                <a href="/sign-in?next=/projects">"Sign in"</a>
                            </p>
                        }
                            .into_any()
                    }
                    Some(Err(error)) => view! { <p role="alert">{error.to_string()}</p> }.into_any(),
                    Some(Ok(list)) if list.is_empty() => {
                        view! {
                            <div class="empty-state">
                                <h2>"No projects yet"</h2>
                                <p>
                                    "Create an empty project and add files, or import one from a .zip or .tar.gz archive."
                                </p>
                                <div class="page-actions">
                                    <Button on_click=Callback::new(move |_| {
                                        editing.set(Some(Editing::New))
                                    })>"Create a project"</Button>
                                    <Button
                                        variant=ButtonVariant::Secondary
                                        on_click=Callback::new(move |_| importing.set(true))
                                    >
                                        "Import an archive"
                                    </Button>
                                </div>
                            </div>
                        }
                            .into_any()
                    }
                    Some(Ok(list)) => {
                        view! {
                            <ul class="project-list" aria-label="Your projects">
                                {list
                                    .into_iter()
                                    .map(|project| {
                                        view! { <ProjectRow project editing deleting/> }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                            .into_any()
                    }
                }}
            </div>
            <ProjectDialog editing on_saved=Callback::new(move |()| reload())/>
            <DeleteProjectDialog deleting on_deleted=Callback::new(move |()| reload())/>
            <ImportDialog open=importing on_imported=Callback::new(move |()| reload())/>
            <TaskNotifier/>
        </AppLayout>
    }
}

#[component]
fn ProjectRow(
    project: ProjectSummary,
    editing: RwSignal<Option<Editing>>,
    deleting: RwSignal<Option<ProjectSummary>>,
) -> impl IntoView {
    let href = format!("/projects/{}", project.id);
    let export = format!("/api/projects/{}/export.zip", project.id);
    let for_edit = project.clone();
    let for_delete = project.clone();
    view! {
        <li class="project-row" data-project-id=project.id.clone()>
            <div class="project-main">
                <a class="project-name" href=href>{project.name.clone()}</a>
                {project.description.clone().map(|text| view! { <p class="project-description">{text}</p> })}
                <p class="project-meta">
                    {project
                        .repository_url
                        .clone()
                        .map(|url| view! { <span class="project-repository">{url}</span> })}
                    <span>"Last change " <LocalTime at=project.updated_at.clone()/></span>
                </p>
            </div>
            <div class="project-actions">
                <a class="button button-ghost" href=export download="">
                    "Export"
                </a>
                <Button
                    variant=ButtonVariant::Ghost
                    aria_label=format!("Edit {}", project.name)
                    on_click=Callback::new(move |_| {
                        editing.set(Some(Editing::Existing(for_edit.clone())))
                    })
                >
                    "Edit"
                </Button>
                <Button
                    variant=ButtonVariant::Ghost
                    aria_label=format!("Delete {}", project.name)
                    on_click=Callback::new(move |_| deleting.set(Some(for_delete.clone())))
                >
                    "Delete"
                </Button>
            </div>
        </li>
    }
}

/// Creates a project or edits one (name, description, repository URL).
#[component]
fn ProjectDialog(editing: RwSignal<Option<Editing>>, on_saved: Callback<()>) -> impl IntoView {
    let toaster = use_toaster();
    let open = RwSignal::new(false);
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let repository_url = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| match editing.get() {
        Some(Editing::New) => {
            name.set(String::new());
            description.set(String::new());
            repository_url.set(String::new());
            error.set(None);
            open.set(true);
        }
        Some(Editing::Existing(project)) => {
            name.set(project.name);
            description.set(project.description.unwrap_or_default());
            repository_url.set(project.repository_url.unwrap_or_default());
            error.set(None);
            open.set(true);
        }
        None => set_if_changed(open, false),
    });
    Effect::new(move |_| {
        if !open.get() {
            set_if_changed(editing, None);
        }
    });
    let submit = move || {
        let current = editing.get_untracked();
        let (name, description, repository_url) = (
            name.get_untracked(),
            description.get_untracked(),
            repository_url.get_untracked(),
        );
        let navigate = leptos_router::hooks::use_navigate();
        leptos::task::spawn_local(async move {
            let created = !matches!(current, Some(Editing::Existing(_)));
            let result = match current {
                Some(Editing::Existing(project)) => {
                    update_project(project.id, name, description, repository_url).await
                }
                _ => create_project(name, description, repository_url).await,
            };
            match result {
                // A new project opens at once: the next thing to do is in the workspace.
                Ok(project) if created => {
                    open.set(false);
                    navigate(&format!("/projects/{}", project.id), Default::default());
                }
                Ok(project) => {
                    open.set(false);
                    toaster.show(ToastKind::Success, format!("Saved {}.", project.name));
                    on_saved.run(());
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    let title = move || match editing.get() {
        Some(Editing::Existing(_)) => "Edit project",
        _ => "New project",
    };
    view! {
        <Modal id="project-dialog" title="Project" open>
            <form
                novalidate
                on:submit=move |event| {
                    event.prevent_default();
                    submit();
                }
            >
                <h3 class="dialog-subtitle">{title}</h3>
                <Input id="project-name" label="Name" value=name/>
                <Input id="project-description" label="Description (optional)" value=description/>
                <Input
                    id="project-repository"
                    label="Repository URL (optional)"
                    value=repository_url
                    placeholder="https://github.com/you/project.git"
                />
                {move || error.get().map(|text| view! { <p class="form-error" role="alert">{text}</p> })}
                <div class="dialog-actions">
                    <Button variant=ButtonVariant::Secondary on_click=Callback::new(move |_| open.set(false))>
                        "Cancel"
                    </Button>
                    <Button kind="submit" id="project-save">"Save"</Button>
                </div>
            </form>
        </Modal>
    }
}

#[component]
fn DeleteProjectDialog(
    deleting: RwSignal<Option<ProjectSummary>>,
    on_deleted: Callback<()>,
) -> impl IntoView {
    let toaster = use_toaster();
    let open = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| set_if_changed(open, deleting.get().is_some()));
    Effect::new(move |_| {
        if !open.get() {
            set_if_changed(deleting, None);
            error.set(None);
        }
    });
    let confirm = move |_| {
        let Some(project) = deleting.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            match delete_project(project.id.clone()).await {
                Ok(()) => {
                    open.set(false);
                    toaster.show(ToastKind::Success, format!("Deleted {}.", project.name));
                    on_deleted.run(());
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    view! {
        <Modal id="delete-project-dialog" title="Delete project" open>
            <p>
                "Delete "
                <strong>{move || deleting.get().map(|project| project.name).unwrap_or_default()}</strong>
                " with all its files and their history? This cannot be undone."
            </p>
            {move || error.get().map(|text| view! { <p class="form-error" role="alert">{text}</p> })}
            <div class="dialog-actions">
                <Button variant=ButtonVariant::Secondary on_click=Callback::new(move |_| open.set(false))>
                    "Cancel"
                </Button>
                <Button id="confirm-delete-project" variant=ButtonVariant::Danger on_click=Callback::new(confirm)>
                    "Delete project"
                </Button>
            </div>
        </Modal>
    }
}

/// Uploads a .zip or .tar.gz as a new project.
#[component]
fn ImportDialog(open: RwSignal<bool>, on_imported: Callback<()>) -> impl IntoView {
    let toaster = use_toaster();
    let name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let file_input = NodeRef::<leptos::html::Input>::new();
    let submit = move || {
        let Some(input) = file_input.get_untracked() else {
            return;
        };
        let Some(file) = input.files().and_then(|files| files.get(0)) else {
            error.set(Some("Choose a .zip or .tar.gz file first.".into()));
            return;
        };
        let mut project_name = name.get_untracked();
        if project_name.trim().is_empty() {
            project_name = file
                .name()
                .trim_end_matches(".zip")
                .trim_end_matches(".tar.gz")
                .trim_end_matches(".tgz")
                .to_owned();
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let result = upload_archive(&project_name, file).await;
            busy.set(false);
            match result {
                Ok(project) => {
                    open.set(false);
                    name.set(String::new());
                    toaster.show(ToastKind::Success, format!("Imported {}.", project.name));
                    on_imported.run(());
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };
    view! {
        <Modal id="import-dialog" title="Import a project" open>
            <form
                novalidate
                on:submit=move |event| {
                    event.prevent_default();
                    submit();
                }
            >
                <div class="field">
                    <label class="field-label" for="import-file">"Archive (.zip or .tar.gz)"</label>
                    <input
                        id="import-file"
                        class="input"
                        type="file"
                        accept=".zip,.tar.gz,.tgz,application/zip,application/gzip"
                        node_ref=file_input
                    />
                </div>
                <Input id="import-name" label="Project name (optional)" value=name/>
                {move || error.get().map(|text| view! { <p class="form-error" role="alert">{text}</p> })}
                <div class="dialog-actions">
                    <Button variant=ButtonVariant::Secondary on_click=Callback::new(move |_| open.set(false))>
                        "Cancel"
                    </Button>
                    <Button kind="submit" id="import-submit" disabled=busy>
                        {move || if busy.get() { "Importing…" } else { "Import" }}
                    </Button>
                </div>
            </form>
        </Modal>
    }
}

/// `POST /api/projects/import?name=…` with the file as the body.
#[cfg(feature = "hydrate")]
async fn upload_archive(name: &str, file: web_sys::File) -> Result<ProjectSummary, AppError> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&file);
    let encoded: String = js_sys::encode_uri_component(name).into();
    let url = format!("/api/projects/import?name={encoded}");
    let response = JsFuture::from(window().fetch_with_str_and_init(&url, &init))
        .await
        .map_err(|_| AppError::Unreachable)?;
    let response: web_sys::Response = response.dyn_into().map_err(|_| AppError::Unreachable)?;
    let text = JsFuture::from(response.text().map_err(|_| AppError::Unreachable)?)
        .await
        .map_err(|_| AppError::Unreachable)?
        .as_string()
        .unwrap_or_default();
    if response.ok() {
        serde_json::from_str(&text).map_err(|_| AppError::Unreachable)
    } else if response.status() == 413 {
        Err(AppError::BadRequest(
            "The archive is larger than this server accepts.".into(),
        ))
    } else {
        Err(serde_json::from_str(&text).unwrap_or(AppError::BadRequest(text)))
    }
}

#[cfg(not(feature = "hydrate"))]
async fn upload_archive(_name: &str, _file: web_sys::File) -> Result<ProjectSummary, AppError> {
    Err(AppError::Unreachable)
}
