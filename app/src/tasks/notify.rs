//! In-app notifications of tasks that stopped: on the pages people work on (projects, the
//! workspace, chat, tasks), the browser looks at the person's tasks every few seconds while the
//! tab is visible, and a task it last saw running that has now finished, paused or failed gets a
//! notification with a link to its page. The tasks seen running are kept in the tab's session
//! storage, so moving between pages misses nothing.

use leptos::prelude::*;

/// Where the ids of the tasks last seen running are kept (comma-separated).
#[cfg(feature = "hydrate")]
const RUNNING_KEY: &str = "async-coder.running-tasks";

/// How often the tasks are looked at.
#[cfg(feature = "hydrate")]
const INTERVAL: std::time::Duration = std::time::Duration::from_secs(4);

/// The ids of the tasks last seen running.
#[cfg(feature = "hydrate")]
fn seen_running(storage: Option<&web_sys::Storage>) -> Vec<String> {
    storage
        .and_then(|storage| storage.get_item(RUNNING_KEY).ok().flatten())
        .map(|text| {
            text.split(',')
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(feature = "hydrate")]
fn remember(storage: Option<&web_sys::Storage>, running: &[String]) {
    if let Some(storage) = storage
        && storage.set_item(RUNNING_KEY, &running.join(",")).is_err()
    {
        leptos::logging::warn!("the running tasks could not be remembered");
    }
}

/// Counts task `id`, which this tab just started, as seen running: even if it stops before the
/// next look, the person is told.
pub fn started_here(id: &str) {
    #[cfg(feature = "hydrate")]
    {
        let storage = window().session_storage().ok().flatten();
        let mut running = seen_running(storage.as_ref());
        if !running.iter().any(|known| known == id) {
            running.push(id.to_owned());
            remember(storage.as_ref(), &running);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _unused = id;
    }
}

/// What to say of a task that stopped.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub fn stopped_message(task: &crate::types::TaskSummary) -> String {
    match task.state.as_str() {
        "finished" => format!(
            "Task “{}” finished: its change set is ready to review.",
            task.title
        ),
        "paused" => format!("Task “{}” needs your input.", task.title),
        "failed" => format!("Task “{}” failed.", task.title),
        _ => format!("Task “{}” stopped ({}).", task.title, task.state_label()),
    }
}

/// Looks at the person's tasks while mounted and notifies the ones that stopped.
#[component]
pub fn TaskNotifier() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        use crate::components::{ToastKind, use_toaster};

        let toaster = use_toaster();
        let storage = window().session_storage().ok().flatten();
        let storage = StoredValue::new_local(storage);
        let checking = StoredValue::new(false);
        let signed_out = StoredValue::new(false);
        let ticks = StoredValue::new(0_u32);
        let check = move || {
            let visible = document().visibility_state() == web_sys::VisibilityState::Visible;
            if !visible || checking.get_value() || signed_out.get_value() {
                return;
            }
            // With no task seen running, one look in five (a task started elsewhere is still
            // noticed within 20 s).
            let tick = ticks.get_value();
            ticks.set_value(tick.wrapping_add(1));
            let idle = storage.with_value(|storage| seen_running(storage.as_ref()).is_empty());
            if idle && !tick.is_multiple_of(5) {
                return;
            }
            checking.set_value(true);
            leptos::task::spawn_local(async move {
                let listed = crate::api::tasks::list_tasks(None).await;
                checking.set_value(false);
                let tasks = match listed {
                    Ok(tasks) => tasks,
                    // A visitor has no tasks: stop asking.
                    Err(crate::error::AppError::Unauthorized) => {
                        signed_out.set_value(true);
                        return;
                    }
                    Err(_) => return,
                };
                let seen = storage.with_value(|storage| seen_running(storage.as_ref()));
                for task in &tasks {
                    if task.is_settled() && seen.contains(&task.id) {
                        let kind = if task.state == "finished" {
                            ToastKind::Success
                        } else {
                            ToastKind::Info
                        };
                        toaster.show_with_link(
                            kind,
                            stopped_message(task),
                            format!("/tasks/{}", task.id),
                            "Open the task",
                        );
                    }
                }
                // Still running, and started here after the list was read (not in it yet).
                let mut running: Vec<String> = tasks
                    .iter()
                    .filter(|task| !task.is_settled())
                    .map(|task| task.id.clone())
                    .collect();
                storage.with_value(|storage| {
                    for id in seen_running(storage.as_ref()) {
                        if !tasks.iter().any(|task| task.id == id) && !running.contains(&id) {
                            running.push(id);
                        }
                    }
                    remember(storage.as_ref(), &running);
                });
            });
        };
        Effect::new(move |_| check());
        let ticker = set_interval_with_handle(check, INTERVAL).ok();
        on_cleanup(move || {
            if let Some(ticker) = ticker {
                ticker.clear();
            }
        });
    }
}
