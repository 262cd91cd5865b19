//! Async tasks in the browser: the Tasks page (every task, a form to start one), the task page
//! (live timeline, plan, evidence, controls) and its review of the change set.

#[cfg(feature = "hydrate")]
mod follow;
mod notify;
mod review;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

pub use notify::{TaskNotifier, started_here};
pub use review::TaskReview;

use crate::api::projects::list_projects;
use crate::api::tasks::{
    cancel_task, follow_up_task, get_task, list_tasks, pause_task, resume_task, start_task,
};
use crate::components::{
    AppLayout, Button, ButtonVariant, LocalTime, ToastKind, Toaster, use_toaster,
};
use crate::error::AppError;
use crate::types::{
    ProjectSummary, TaskDetail, TaskEntry, TaskSummary, TaskTimelineEntry, dollars,
};

/// How long a tool result may be before the timeline folds it.
const FOLDED_RESULT_CHARS: usize = 600;

/// A fresh idempotency key for a request the person makes once (a retry reuses it).
fn new_key() -> String {
    #[cfg(feature = "hydrate")]
    {
        let random = js_sys::Math::random();
        format!("{}-{}", js_sys::Date::now(), random.to_bits())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        String::new()
    }
}

/// `/tasks`: the person's tasks and a form to start one.
#[component]
pub fn TasksPage() -> impl IntoView {
    let tasks = RwSignal::new(None::<Result<Vec<TaskSummary>, AppError>>);
    let projects = RwSignal::new(Vec::<ProjectSummary>::new());
    let reload = move || {
        leptos::task::spawn_local(async move {
            tasks.set(Some(list_tasks(None).await));
        });
    };
    Effect::new(move |_| {
        reload();
        leptos::task::spawn_local(async move {
            if let Ok(list) = list_projects().await {
                projects.set(list);
            }
        });
    });
    // The list follows the tasks' states while any runs, so it never contradicts a task page.
    #[cfg(feature = "hydrate")]
    {
        let ticker = set_interval_with_handle(
            move || {
                let running = tasks.with_untracked(|tasks| {
                    matches!(tasks, Some(Ok(list)) if list.iter().any(|task| !task.is_settled()))
                });
                if running {
                    reload();
                }
            },
            std::time::Duration::from_secs(2),
        )
        .ok();
        on_cleanup(move || {
            if let Some(ticker) = ticker {
                ticker.clear();
            }
        });
    }
    let project_name = move |id: &str| {
        projects.with(|projects| {
            projects
                .iter()
                .find(|project| project.id == id)
                .map(|project| project.name.clone())
                .unwrap_or_default()
        })
    };
    view! {
        <Title text="Tasks · Async Coder"/>
        <AppLayout>
            <div class="page wide tasks-page">
                <div class="page-heading">
                    <h1>"Tasks"</h1>
                </div>
                <p class="page-lead">
                    "An agent works on each task in the background, in its own copy of the project, and hands back a change set for you to review. Nothing reaches your files until you accept it."
                </p>
                <NewTaskForm projects on_started=Callback::new(move |_| reload())/>
                <h2>"Your tasks"</h2>
                {move || match tasks.get() {
                    None => view! { <p>"Loading…"</p> }.into_any(),
                    Some(Err(AppError::Unauthorized)) => {
                        view! {
                            <p>
                                "Sign in to see your tasks. "
                                <a href="/sign-in?next=/tasks">"Sign in"</a>
                            </p>
                        }
                            .into_any()
                    }
                    Some(Err(error)) => view! { <p role="alert">{error.to_string()}</p> }.into_any(),
                    Some(Ok(list)) if list.is_empty() => {
                        view! { <p class="empty-note">"No tasks yet. Describe one above to start."</p> }
                            .into_any()
                    }
                    Some(Ok(list)) => {
                        view! {
                            <ul class="task-list" aria-label="Your tasks">
                                {list
                                    .into_iter()
                                    .map(|task| {
                                        let project = project_name(&task.project_id);
                                        view! { <TaskRow task project/> }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                            .into_any()
                    }
                }}
            </div>
            <TaskNotifier/>
        </AppLayout>
    }
}

/// One task in a list: title, state, steps, cost, last activity.
#[component]
pub fn TaskRow(task: TaskSummary, #[prop(optional, into)] project: String) -> impl IntoView {
    let href = format!("/tasks/{}", task.id);
    let steps = match task.limits.max_steps {
        Some(limit) => format!("{} / {limit} steps", task.steps),
        None => format!("{} steps", task.steps),
    };
    let cost = dollars(u64::try_from(task.cost_micros).unwrap_or(0));
    view! {
        <li class="task-row" data-task-id=task.id.clone() data-state=task.state.clone()>
            <div class="task-row-main">
                <a class="task-title" href=href>{task.title.clone()}</a>
                <p class="task-meta">
                    {(!project.is_empty()).then(|| view! { <span>{project}</span> })}
                    <span>{steps}</span>
                    <span>{cost}</span>
                    <span>"Last activity " <LocalTime at=task.last_activity_at.clone()/></span>
                </p>
            </div>
            <span class=format!("task-state task-state-{}", task.state)>{task.state_label()}</span>
        </li>
    }
}

/// The form that starts a task: a project (unless given) and the instructions.
#[component]
pub fn NewTaskForm(
    /// The projects to choose from (ignored when `project_id` is given).
    #[prop(optional, into)]
    projects: Signal<Vec<ProjectSummary>>,
    /// The project the task is for, when the page already knows it.
    #[prop(optional, into)]
    project_id: Option<String>,
    on_started: Callback<TaskSummary>,
    /// Go to the task's page once it started.
    #[prop(default = true)]
    open_started: bool,
    /// The model to ask (the chat's choice; empty: the async mode's models, else the default).
    #[prop(optional, into)]
    model: Signal<String>,
) -> impl IntoView {
    let fixed_project = project_id.clone();
    let chosen = RwSignal::new(project_id.unwrap_or_default());
    let instructions = RwSignal::new(String::new());
    let max_steps = RwSignal::new(String::from("40"));
    let starting = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let toaster = use_toaster();
    let navigate = leptos_router::hooks::use_navigate();
    // The first project is chosen once the list arrives.
    Effect::new(move |_| {
        let first = projects.with(|projects| projects.first().map(|project| project.id.clone()));
        if chosen.with_untracked(String::is_empty)
            && let Some(first) = first
        {
            chosen.set(first);
        }
    });
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let project = chosen.get_untracked();
        let text = instructions.get_untracked();
        if project.is_empty() {
            error.set(Some(
                "Choose a project first (create one on the Projects page).".into(),
            ));
            return;
        }
        if text.trim().is_empty() {
            error.set(Some(
                "Describe the task: what should the agent change, and how will it know it is done?"
                    .into(),
            ));
            return;
        }
        let steps = match max_steps.get_untracked().trim() {
            "" => None,
            text => match text.parse::<u64>() {
                Ok(steps) if (1..=500).contains(&steps) => Some(steps),
                _ => {
                    error.set(Some(
                        "The step limit is a whole number from 1 to 500.".into(),
                    ));
                    return;
                }
            },
        };
        error.set(None);
        starting.set(true);
        let navigate = navigate.clone();
        let models: Vec<String> = Some(model.get_untracked())
            .filter(|model| !model.is_empty())
            .into_iter()
            .collect();
        leptos::task::spawn_local(async move {
            let outcome = start_task(project, text, steps, None, models).await;
            starting.set(false);
            match outcome {
                Ok(task) => {
                    started_here(&task.id);
                    instructions.set(String::new());
                    toaster.show(
                        ToastKind::Success,
                        format!("Task “{}” started.", task.title),
                    );
                    let href = format!("/tasks/{}", task.id);
                    on_started.run(task);
                    if open_started {
                        navigate(&href, Default::default());
                    }
                }
                Err(refused) => error.set(Some(refused.to_string())),
            }
        });
    };
    view! {
        <form class="new-task card" on:submit=submit aria-label="New task">
            {fixed_project
                .is_none()
                .then(|| {
                    view! {
                        <div class="field">
                            <label class="field-label" for="task-project">"Project"</label>
                            <select
                                id="task-project"
                                class="select"
                                prop:value=move || chosen.get()
                                on:change=move |event| chosen.set(event_target_value(&event))
                            >
                                {move || {
                                    projects
                                        .get()
                                        .into_iter()
                                        .map(|project| {
                                            let id = project.id.clone();
                                            view! {
                                                <option value=project.id.clone() selected=move || chosen.get() == id>
                                                    {project.name.clone()}
                                                </option>
                                            }
                                        })
                                        .collect_view()
                                }}
                            </select>
                        </div>
                    }
                })}
            <div class="field">
                <label class="field-label" for="task-instructions">"Task"</label>
                <textarea
                    id="task-instructions"
                    class="input task-instructions"
                    rows="4"
                    placeholder="Fix the failing test in src/lib.rs and make `cargo test` pass."
                    prop:value=move || instructions.get()
                    on:input=move |event| instructions.set(event_target_value(&event))
                ></textarea>
            </div>
            <div class="new-task-actions">
                <div class="field field-inline">
                    <label class="field-label" for="task-max-steps">"Step limit"</label>
                    <input
                        id="task-max-steps"
                        class="input input-narrow"
                        inputmode="numeric"
                        prop:value=move || max_steps.get()
                        on:input=move |event| max_steps.set(event_target_value(&event))
                    />
                </div>
                <Button kind="submit" id="start-task" disabled=Signal::derive(move || starting.get())>
                    {move || if starting.get() { "Starting…" } else { "Start task" }}
                </Button>
            </div>
            {move || error.get().map(|text| view! { <p class="form-error" role="alert">{text}</p> })}
        </form>
    }
}

/// What the task page holds while it is open.
#[derive(Clone, Copy)]
struct TaskView {
    id: StoredValue<String>,
    detail: RwSignal<Option<Result<TaskDetail, AppError>>>,
    /// Bumped when the change set may have changed (the task stopped, hunks were applied).
    changes_version: RwSignal<u64>,
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    toaster: Toaster,
    #[cfg(feature = "hydrate")]
    follower: StoredValue<Option<follow::TaskFollower>, LocalStorage>,
}

impl TaskView {
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn last_seq(&self) -> i64 {
        self.detail.with_untracked(|detail| match detail {
            Some(Ok(detail)) => detail.timeline.last().map_or(0, |entry| entry.seq),
            _ => 0,
        })
    }

    /// Applies an entry the stream delivered (one the page has not seen yet).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn apply(&self, item: TaskTimelineEntry) {
        self.detail.update(|detail| {
            let Some(Ok(detail)) = detail else {
                return;
            };
            if detail
                .timeline
                .last()
                .is_some_and(|last| last.seq >= item.seq)
            {
                return;
            }
            match &item.entry {
                TaskEntry::ModelResponse { response, .. } => {
                    detail.task.steps += 1;
                    detail.task.tokens +=
                        i64::try_from(response.usage.input_tokens + response.usage.output_tokens)
                            .unwrap_or(0);
                    detail.task.cost_micros += i64::try_from(response.cost_micros).unwrap_or(0);
                }
                TaskEntry::ToolDone { plan, command, .. } => {
                    if let Some(plan) = plan {
                        detail.plan = plan.clone();
                    }
                    if let (Some(outcome), Some(command_line)) =
                        (command, command_line_of(&detail.timeline, &item.entry))
                    {
                        detail.commands.push((command_line, outcome.clone()));
                    }
                }
                _ => {}
            }
            detail.timeline.push(item);
        });
    }

    fn reload(self) {
        leptos::task::spawn_local(async move {
            let loaded = get_task(self.id.get_value()).await;
            let running = matches!(&loaded, Ok(detail) if detail.task.state == "running");
            self.detail.set(Some(loaded));
            self.changes_version.update(|version| *version += 1);
            if running {
                self.follow();
            }
        });
    }

    /// Takes a summary the server returned after an action.
    fn settle(self, task: TaskSummary) {
        let running = task.state == "running";
        self.detail.update(|detail| {
            if let Some(Ok(detail)) = detail {
                detail.task = task;
            }
        });
        if running {
            self.follow();
        } else {
            self.changes_version.update(|version| *version += 1);
        }
    }

    #[cfg(feature = "hydrate")]
    fn follow(self) {
        let id = self.id.get_value();
        let after = self.last_seq();
        let on_entry = move |entry| self.apply(entry);
        let on_state = move |task: TaskSummary| {
            self.detail.update(|detail| {
                if let Some(Ok(detail)) = detail {
                    detail.task = task;
                }
            });
            self.changes_version.update(|version| *version += 1);
        };
        // A closed stream: the task may just have ended; the page asks where it is.
        let on_lost = move |_note: String| {
            leptos::task::spawn_local(async move {
                if let Ok(detail) = get_task(self.id.get_value()).await {
                    self.detail.set(Some(Ok(detail)));
                    self.changes_version.update(|version| *version += 1);
                }
            });
        };
        match follow::follow(&id, after, on_entry, on_state, on_lost) {
            Ok(follower) => self.follower.set_value(Some(follower)),
            Err(note) => self.toaster.show(ToastKind::Error, note),
        }
    }

    #[cfg(not(feature = "hydrate"))]
    fn follow(self) {}
}

/// The command line of a `run` call whose result `done` is (from its model response).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn command_line_of(timeline: &[TaskTimelineEntry], done: &TaskEntry) -> Option<String> {
    let TaskEntry::ToolDone { call_id, .. } = done else {
        return None;
    };
    timeline.iter().rev().find_map(|item| match &item.entry {
        TaskEntry::ModelResponse { response, .. } => response
            .tool_calls
            .iter()
            .find(|call| call.id == *call_id)
            .and_then(|call| serde_json::from_str::<serde_json::Value>(&call.arguments).ok())
            .and_then(|arguments| {
                arguments
                    .get("command")
                    .and_then(|command| command.as_str())
                    .map(str::to_owned)
            }),
        _ => None,
    })
}

/// `/tasks/:id`: one task, live.
#[component]
pub fn TaskPage() -> impl IntoView {
    let params = use_params_map();
    let id = params.with_untracked(|params| params.get("id").unwrap_or_default());
    let view_state = TaskView {
        id: StoredValue::new(id),
        detail: RwSignal::new(None),
        changes_version: RwSignal::new(0),
        toaster: use_toaster(),
        #[cfg(feature = "hydrate")]
        follower: StoredValue::new_local(None),
    };
    Effect::new(move |_| view_state.reload());
    let title = move || {
        view_state.detail.with(|detail| match detail {
            Some(Ok(detail)) => format!("{} · Tasks · Async Coder", detail.task.title),
            _ => "Task · Async Coder".to_owned(),
        })
    };
    view! {
        <Title text=title/>
        <AppLayout>
            <div class="page wide task-page">
                {move || match view_state.detail.get() {
                    None => view! { <p>"Loading…"</p> }.into_any(),
                    Some(Err(AppError::Unauthorized)) => {
                        view! {
                            <p>
                                "Sign in to see this task. "
                                <a href="/sign-in?next=/tasks">"Sign in"</a>
                            </p>
                        }
                            .into_any()
                    }
                    Some(Err(AppError::NotFound)) => {
                        view! {
                            <div class="empty-state">
                                <h1>"No such task"</h1>
                                <p>"It does not exist, or it is not yours. " <a href="/tasks">"See your tasks"</a></p>
                            </div>
                        }
                            .into_any()
                    }
                    Some(Err(error)) => view! { <p role="alert">{error.to_string()}</p> }.into_any(),
                    Some(Ok(_)) => view! { <TaskBody view_state/> }.into_any(),
                }}
            </div>
            <TaskNotifier/>
        </AppLayout>
    }
}

#[component]
fn TaskBody(view_state: TaskView) -> impl IntoView {
    let task = Memo::new(move |_| {
        view_state.detail.with(|detail| match detail {
            Some(Ok(detail)) => Some(detail.task.clone()),
            _ => None,
        })
    });
    let instructions = view_state.detail.with_untracked(|detail| match detail {
        Some(Ok(detail)) => detail.instructions.clone(),
        _ => String::new(),
    });
    let state = move || task.get().map(|task| task.state).unwrap_or_default();
    let project_href = move || {
        task.get()
            .map(|task| format!("/projects/{}", task.project_id))
            .unwrap_or_default()
    };
    view! {
        <div class="page-heading">
            <h1 class="task-heading">{move || task.get().map(|task| task.title).unwrap_or_default()}</h1>
            <span
                id="task-state"
                class=move || format!("task-state task-state-{}", state())
                data-state=state
                role="status"
            >
                {move || task.get().map(|task| task.state_label()).unwrap_or_default()}
            </span>
        </div>
        <p class="task-meta task-counters" id="task-counters">
            <span>{move || task.get().map(|task| match task.limits.max_steps {
                Some(limit) => format!("{} / {limit} steps", task.steps),
                None => format!("{} steps", task.steps),
            }).unwrap_or_default()}</span>
            <span>{move || task.get().map(|task| format!("{} tokens", task.tokens)).unwrap_or_default()}</span>
            <span id="task-cost">{move || task.get().map(|task| dollars(u64::try_from(task.cost_micros).unwrap_or(0))).unwrap_or_default()}</span>
            <a href=project_href>"Open the project"</a>
            <a href="/tasks">"All tasks"</a>
        </p>
        <TaskControls view_state task/>
        <details class="task-instructions-shown">
            <summary>"Instructions"</summary>
            <pre class="task-text">{instructions}</pre>
        </details>
        {move || {
            task.get()
                .and_then(|task| task.summary)
                .map(|summary| {
                    view! {
                        <section class="task-summary card" aria-label="Summary">
                            <h2>"The agent's summary"</h2>
                            <pre class="task-text">{summary}</pre>
                        </section>
                    }
                })
        }}
        <div class="task-columns">
            <section class="task-timeline-section" aria-label="Timeline">
                <h2>"Timeline"</h2>
                <TaskTimeline view_state/>
                <FollowUpForm view_state task/>
            </section>
            <aside class="task-side">
                <section aria-label="Plan">
                    <h2>"Plan"</h2>
                    <TaskPlan view_state/>
                </section>
                <section aria-label="Evidence">
                    <h2>"Commands run"</h2>
                    <TaskEvidence view_state/>
                </section>
            </aside>
        </div>
        <TaskReview
            task_id=view_state.id.get_value()
            settled=Signal::derive(move || task.get().is_some_and(|task| task.is_settled()))
            version=view_state.changes_version
            on_sent_back=Callback::new(move |task| view_state.settle(task))
        />
    }
}

#[component]
fn TaskControls(view_state: TaskView, task: Memo<Option<TaskSummary>>) -> impl IntoView {
    let busy = RwSignal::new(false);
    let toaster = use_toaster();
    let act = move |action: &'static str| {
        let id = view_state.id.get_value();
        busy.set(true);
        leptos::task::spawn_local(async move {
            let outcome = match action {
                "pause" => pause_task(id).await,
                "cancel" => cancel_task(id).await,
                "resume" => resume_task(id, false, Some(new_key())).await,
                _ => resume_task(id, true, Some(new_key())).await,
            };
            busy.set(false);
            match outcome {
                Ok(task) => view_state.settle(task),
                Err(error) => toaster.show(ToastKind::Error, error.to_string()),
            }
        });
    };
    let state = move || task.get().map(|task| task.state).unwrap_or_default();
    let pause_reason = move || task.get().and_then(|task| task.pause_reason);
    let pause_asked = move || {
        task.get().is_some_and(|task| {
            task.state == "running"
                && task.pause_reason == Some(crate::types::TaskPauseReason::Requested)
        })
    };
    view! {
        {move || {
            pause_reason()
                .filter(|_| state() == "paused")
                .map(|reason| {
                    view! {
                        <p class="task-needs-input" role="alert" id="task-pause-reason">
                            {reason.describe()}
                        </p>
                    }
                })
        }}
        <div class="task-controls page-actions">
            <Show when=move || state() == "running">
                <Button
                    id="task-pause"
                    variant=ButtonVariant::Secondary
                    disabled=Signal::derive(move || busy.get() || pause_asked())
                    on_click=Callback::new(move |_| act("pause"))
                >
                    {move || if pause_asked() { "Pausing at the next step…" } else { "Pause" }}
                </Button>
            </Show>
            <Show when=move || state() == "paused">
                <Show when=move || pause_reason().is_some_and(|reason| reason.is_budget())>
                    <Button
                        id="task-more-budget"
                        disabled=Signal::derive(move || busy.get())
                        on_click=Callback::new(move |_| act("more"))
                    >
                        "Continue with more budget"
                    </Button>
                </Show>
                <Button
                    id="task-resume"
                    variant=ButtonVariant::Secondary
                    disabled=Signal::derive(move || busy.get())
                    on_click=Callback::new(move |_| act("resume"))
                >
                    "Resume"
                </Button>
            </Show>
            <Show when=move || state() == "running" || state() == "paused">
                <Button
                    id="task-cancel"
                    variant=ButtonVariant::Danger
                    disabled=Signal::derive(move || busy.get())
                    on_click=Callback::new(move |_| act("cancel"))
                >
                    "Cancel task"
                </Button>
            </Show>
        </div>
    }
}

#[component]
fn TaskTimeline(view_state: TaskView) -> impl IntoView {
    let entries = move || {
        view_state.detail.with(|detail| match detail {
            Some(Ok(detail)) => detail.timeline.clone(),
            _ => Vec::new(),
        })
    };
    view! {
        <ol class="task-timeline" id="task-timeline" aria-live="polite">
            <For each=entries key=|item| item.seq let:item>
                <TimelineItem entry=item.entry/>
            </For>
        </ol>
    }
}

/// The first `limit` characters of `text`, and whether there was more.
fn head_of(text: &str, limit: usize) -> (String, bool) {
    match text.char_indices().nth(limit) {
        Some((end, _)) => (text[..end].to_owned(), true),
        None => (text.to_owned(), false),
    }
}

/// A short form of a tool call's arguments: its path or command, else the JSON's head.
fn arguments_summary(arguments: &str) -> String {
    let parsed = serde_json::from_str::<serde_json::Value>(arguments).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|value| value.get(name))
            .and_then(|value| value.as_str())
            .map(str::to_owned)
    };
    field("command")
        .or_else(|| field("path"))
        .or_else(|| field("pattern"))
        .or_else(|| field("summary"))
        .unwrap_or_else(|| head_of(arguments, 120).0)
}

#[component]
fn TimelineItem(entry: TaskEntry) -> impl IntoView {
    match entry {
        TaskEntry::UserMessage { text } => view! {
            <li class="timeline-item timeline-user">
                <span class="timeline-label">"You"</span>
                <pre class="task-text">{text}</pre>
            </li>
        }
        .into_any(),
        TaskEntry::ModelResponse { step, response } => {
            let calls: Vec<String> = response
                .tool_calls
                .iter()
                .map(|call| format!("{}({})", call.name, arguments_summary(&call.arguments)))
                .collect();
            let model = if response.model.is_empty() {
                String::new()
            } else {
                format!(" · {}", response.model)
            };
            view! {
                <li class="timeline-item timeline-model" data-step=step>
                    <span class="timeline-label">{format!("Step {step}{model}")}</span>
                    {(!response.text.trim().is_empty())
                        .then(|| view! { <p class="timeline-text">{response.text.clone()}</p> })}
                    {(!calls.is_empty())
                        .then(|| {
                            view! {
                                <ul class="timeline-calls">
                                    {calls
                                        .into_iter()
                                        .map(|call| view! { <li><code>{call}</code></li> })
                                        .collect_view()}
                                </ul>
                            }
                        })}
                </li>
            }
            .into_any()
        }
        TaskEntry::ToolStarted { .. } | TaskEntry::Other => ().into_any(),
        TaskEntry::ToolDone {
            name,
            status,
            content,
            ..
        } => {
            let (head, folded) = head_of(&content, FOLDED_RESULT_CHARS);
            view! {
                <li class=format!("timeline-item timeline-tool timeline-tool-{status}") data-tool=name.clone()>
                    <span class="timeline-label">{format!("{name} · {status}")}</span>
                    {if folded {
                        view! {
                            <details>
                                <summary><pre class="task-text">{head}"…"</pre></summary>
                                <pre class="task-text">{content}</pre>
                            </details>
                        }
                            .into_any()
                    } else {
                        view! { <pre class="task-text">{content}</pre> }.into_any()
                    }}
                </li>
            }
            .into_any()
        }
        TaskEntry::Compaction { step, .. } => view! {
            <li class="timeline-item timeline-note">
                {format!("Older steps were summarised before step {step} to fit the model's window.")}
            </li>
        }
        .into_any(),
        TaskEntry::Paused { reason, .. } => view! {
            <li class="timeline-item timeline-note timeline-paused">{reason.describe()}</li>
        }
        .into_any(),
        TaskEntry::Resumed { note } => view! {
            <li class="timeline-item timeline-note">
                {match note {
                    Some(note) => format!("Resumed: {note}"),
                    None => "Resumed.".to_owned(),
                }}
            </li>
        }
        .into_any(),
        TaskEntry::Cancelled { .. } => view! {
            <li class="timeline-item timeline-note">"Cancelled."</li>
        }
        .into_any(),
    }
}

#[component]
fn TaskPlan(view_state: TaskView) -> impl IntoView {
    let plan = move || {
        view_state.detail.with(|detail| match detail {
            Some(Ok(detail)) => detail.plan.clone(),
            _ => Vec::new(),
        })
    };
    view! {
        {move || {
            let plan = plan();
            if plan.is_empty() {
                view! { <p class="empty-note">"The agent has not written a plan yet."</p> }.into_any()
            } else {
                view! {
                    <ol class="task-plan" id="task-plan">
                        {plan
                            .into_iter()
                            .map(|item| {
                                let mark = match item.status.as_str() {
                                    "done" => "✓",
                                    "in_progress" => "▸",
                                    _ => "○",
                                };
                                view! {
                                    <li class=format!("plan-item plan-{}", item.status)>
                                        <span aria-hidden="true">{mark}" "</span>
                                        {item.text}
                                        <span class="visually-hidden">{format!(" ({})", item.status.replace('_', " "))}</span>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ol>
                }
                    .into_any()
            }
        }}
    }
}

#[component]
fn TaskEvidence(view_state: TaskView) -> impl IntoView {
    let running = move || {
        view_state
            .detail
            .with(|detail| matches!(detail, Some(Ok(detail)) if detail.task.state == "running"))
    };
    let commands = move || {
        view_state.detail.with(|detail| match detail {
            Some(Ok(detail)) => detail.commands.clone(),
            _ => Vec::new(),
        })
    };
    view! {
        {move || {
            let commands = commands();
            if commands.is_empty() {
                let note = if running() { "No commands yet." } else { "The agent ran no command." };
                view! { <p class="empty-note">{note}</p> }.into_any()
            } else {
                view! {
                    <ul class="task-evidence" id="task-evidence">
                        {commands
                            .into_iter()
                            .map(|(command_line, outcome)| {
                                let tail: String = {
                                    let lines: Vec<&str> = outcome.output.lines().collect();
                                    let start = lines.len().saturating_sub(12);
                                    lines[start..].join("\n")
                                };
                                view! {
                                    <li class=if outcome.status.succeeded() { "evidence evidence-ok" } else { "evidence evidence-failed" }>
                                        <code>{command_line}</code>
                                        <span class="evidence-status">
                                            {format!(
                                                " {} · {:.1} s",
                                                outcome.status.describe(),
                                                outcome.duration_milliseconds as f64 / 1000.0,
                                            )}
                                        </span>
                                        {(!tail.is_empty()).then(|| view! { <pre class="task-text">{tail}</pre> })}
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }
        }}
    }
}

#[component]
fn FollowUpForm(view_state: TaskView, task: Memo<Option<TaskSummary>>) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let sending = RwSignal::new(false);
    let key = StoredValue::new(new_key());
    let toaster = use_toaster();
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let message = text.get_untracked();
        if message.trim().is_empty() {
            return;
        }
        sending.set(true);
        let id = view_state.id.get_value();
        leptos::task::spawn_local(async move {
            let outcome = follow_up_task(id, message, Some(key.get_value())).await;
            sending.set(false);
            match outcome {
                Ok(summary) => {
                    text.set(String::new());
                    key.set_value(new_key());
                    view_state.settle(summary);
                }
                Err(error) => toaster.show(ToastKind::Error, error.to_string()),
            }
        });
    };
    let running = move || task.get().is_some_and(|task| task.state == "running");
    view! {
        <form class="task-follow-up" on:submit=submit aria-label="Follow-up">
            <label class="field-label" for="task-follow-up-text">
                {move || if running() { "Tell the agent something while it works" } else { "Ask for more (the agent goes on from here)" }}
            </label>
            <textarea
                id="task-follow-up-text"
                class="input"
                rows="2"
                prop:value=move || text.get()
                on:input=move |event| text.set(event_target_value(&event))
            ></textarea>
            <Button kind="submit" id="task-follow-up-send" variant=ButtonVariant::Secondary disabled=Signal::derive(move || sending.get())>
                "Send"
            </Button>
        </form>
    }
}

/// The chat's async mode: a task starts from here on the chat's project, and the project's tasks
/// follow below with their state, each linking to its page.
#[component]
pub fn ChatTasks(
    project_id: Option<String>,
    /// The model chosen in the chat.
    #[prop(into)]
    model: Signal<String>,
) -> impl IntoView {
    let Some(project_id) = project_id else {
        return view! {
            <p class="chat-empty" id="chat-async-needs-project" role="status">
                "The async agent works on a project's files. Open a project and choose the Async mode in its chat, or start a task from the "
                <a href="/tasks">"Tasks page"</a>
                "."
            </p>
        }
        .into_any();
    };
    let tasks = RwSignal::new(Vec::<TaskSummary>::new());
    let project = StoredValue::new(project_id.clone());
    let reload = move || {
        leptos::task::spawn_local(async move {
            if let Ok(list) = list_tasks(Some(project.get_value())).await {
                tasks.set(list);
            }
        });
    };
    Effect::new(move |_| reload());
    #[cfg(feature = "hydrate")]
    {
        let ticker = set_interval_with_handle(
            move || {
                if tasks.with_untracked(|tasks| tasks.iter().any(|task| !task.is_settled())) {
                    reload();
                }
            },
            std::time::Duration::from_secs(2),
        )
        .ok();
        on_cleanup(move || {
            if let Some(ticker) = ticker {
                ticker.clear();
            }
        });
    }
    view! {
        <div class="chat-tasks" id="chat-tasks">
            <p class="chat-hint">
                "Describe a task: the agent works on it in the background, in its own copy of this project, and hands back a change set for you to review. You can leave; you will be told when it stops."
            </p>
            <NewTaskForm
                project_id=project_id
                on_started=Callback::new(move |_| reload())
                open_started=false
                model
            />
            {move || {
                let list = tasks.get();
                (!list.is_empty())
                    .then(|| {
                        view! {
                            <ul class="task-list task-list-compact" aria-label="This project's tasks">
                                {list.into_iter().take(8).map(|task| view! { <TaskRow task/> }).collect_view()}
                            </ul>
                        }
                    })
            }}
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{TaskCommandStatus, TaskDetail, TaskPauseReason};

    /// A task page as the server writes it (the shape of `services::tasks::TaskDetail`).
    const DETAIL: &str = r#"{
        "id": "0193f0c2-1d2e-7a3b-8c4d-5e6f7a8b9c0d",
        "project_id": "0193f0c2-1d2e-7a3b-8c4d-5e6f7a8b9c0e",
        "title": "Fix add",
        "state": "paused",
        "pause_reason": {"kind": "stuck", "reason": "repeated_action", "steps": [3, 4, 5]},
        "summary": null,
        "steps": 5, "tokens": 1200, "cost_micros": 1500,
        "limits": {"max_steps": 40, "max_tokens": null, "max_cost_micros": 5000000, "max_wall_time_seconds": 7200},
        "created_at": "2026-12-07T06:00:00Z",
        "last_activity_at": "2026-12-07T06:01:00Z",
        "ended_at": null,
        "instructions": "Fix add",
        "plan": [{"text": "Run the tests", "status": "done"}, {"text": "Fix add", "status": "in_progress"}],
        "commands": [["cargo test", {"status": {"status": "exited", "code": 101}, "duration_milliseconds": 2500, "output": "1 failed"}]],
        "timeline": [
            {"seq": 1, "entry": {"type": "user_message", "text": "Fix add"}},
            {"seq": 2, "entry": {"type": "model_response", "step": 1, "response": {
                "text": "", "tool_calls": [{"id": "call-1", "name": "run", "arguments": "{\"command\":\"cargo test\"}"}],
                "reasoning": "", "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0},
                "cost_micros": 300, "provider": "local", "model": "coder", "fallbacks": []}}},
            {"seq": 3, "entry": {"type": "tool_started", "step": 1, "call_id": "call-1", "name": "run", "effects": [], "planned_result": null}},
            {"seq": 4, "entry": {"type": "tool_done", "step": 1, "call_id": "call-1", "name": "run", "status": "ok", "content": "exit 101",
                "command": {"status": {"status": "denied", "reason": "no sandbox"}, "duration_milliseconds": 0, "output": ""}}},
            {"seq": 5, "entry": {"type": "compaction", "step": 2, "summary": "s", "kept_messages": 4}},
            {"seq": 6, "entry": {"type": "something_newer", "detail": 1}}
        ]
    }"#;

    #[test]
    fn the_servers_task_page_reads_into_the_wire_types() {
        let detail: TaskDetail = serde_json::from_str(DETAIL).unwrap();
        assert_eq!(detail.task.state_label(), "Needs input");
        assert_eq!(detail.plan.len(), 2);
        assert_eq!(detail.commands[0].0, "cargo test");
        assert_eq!(
            detail.commands[0].1.status,
            TaskCommandStatus::Exited { code: Some(101) }
        );
        assert_eq!(detail.timeline.len(), 6);
        assert_eq!(detail.timeline[5].entry, TaskEntry::Other);
        let TaskEntry::ToolDone { command, .. } = &detail.timeline[3].entry else {
            panic!("{:?}", detail.timeline[3]);
        };
        assert_eq!(
            command.as_ref().map(|outcome| outcome.status.describe()),
            Some("refused: no sandbox".to_owned())
        );
        let reason = detail.task.pause_reason.unwrap();
        assert!(
            reason.describe().contains("steps 3, 4, 5"),
            "{}",
            reason.describe()
        );
        assert!(!reason.is_budget());
    }

    #[test]
    fn a_run_results_command_line_comes_from_its_call() {
        let detail: TaskDetail = serde_json::from_str(DETAIL).unwrap();
        let done = &detail.timeline[3].entry;
        assert_eq!(
            command_line_of(&detail.timeline[..3], done),
            Some("cargo test".to_owned())
        );
        let user = &detail.timeline[0].entry;
        assert_eq!(command_line_of(&detail.timeline, user), None);
    }

    #[test]
    fn tool_arguments_are_summarised_by_what_they_touch() {
        assert_eq!(
            arguments_summary(r#"{"command":"cargo test"}"#),
            "cargo test"
        );
        assert_eq!(
            arguments_summary(r#"{"path":"src/lib.rs","old_text":"a"}"#),
            "src/lib.rs"
        );
        let long = format!(r#"{{"patch":"{}"}}"#, "x".repeat(500));
        assert_eq!(arguments_summary(&long).chars().count(), 120);
        assert_eq!(head_of("héllo", 2), ("hé".to_owned(), true));
        assert_eq!(head_of("hé", 2), ("hé".to_owned(), false));
    }

    #[test]
    fn pause_reasons_tell_what_to_do() {
        let budget = TaskPauseReason::Budget {
            which: "steps".into(),
        };
        assert!(budget.is_budget());
        assert!(budget.describe().contains("step budget"));
        assert!(budget.describe().contains("more budget"));
        let failed = TaskPauseReason::ModelFailed {
            message: "429".into(),
        };
        assert!(failed.describe().contains("429"));
    }
}
