//! The review of a task's change set: file by file in Monaco's diff view (the right side can be
//! edited before accepting), hunk by hunk with a checkbox each. Accepted hunks become new
//! revisions of the project's files; rejected ones can go back to the agent with a comment.

use leptos::prelude::*;

use crate::api::tasks::{apply_task_changes, reject_task_changes, task_changes};
use crate::components::{Button, ButtonVariant, ToastKind, use_toaster};
use crate::error::AppError;
use crate::types::{TaskApplyReport, TaskFileChange, TaskFileDecision, TaskHunk, TaskSummary};

/// Monaco's language for a path, from its extension (plain text when unknown).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn language_of(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.').map(|(_, extension)| extension)?;
    Some(match extension.to_ascii_lowercase().as_str() {
        "rs" => "rust",
        "ts" | "tsx" => "typescript",
        "js" | "jsx" | "mjs" | "cjs" => "javascript",
        "py" => "python",
        "go" => "go",
        "java" => "java",
        "c" | "h" => "c",
        "cc" | "cpp" | "hpp" | "cxx" => "cpp",
        "cs" => "csharp",
        "rb" => "ruby",
        "php" => "php",
        "md" => "markdown",
        "json" => "json",
        "css" => "css",
        "html" | "htm" => "html",
        "yml" | "yaml" => "yaml",
        "sh" | "bash" => "shell",
        "sql" => "sql",
        "kt" => "kotlin",
        "swift" => "swift",
        _ => return None,
    })
}

/// A hunk as a unified-diff snippet.
fn hunk_text(hunk: &TaskHunk) -> String {
    let mut text = String::new();
    for line in &hunk.removed {
        text.push('-');
        text.push_str(line.strip_suffix('\n').unwrap_or(line));
        text.push('\n');
    }
    for line in &hunk.added {
        text.push('+');
        text.push_str(line.strip_suffix('\n').unwrap_or(line));
        text.push('\n');
    }
    text
}

/// What the review holds for one file.
#[derive(Clone, Copy)]
struct FileState {
    change: StoredValue<TaskFileChange>,
    accepted: RwSignal<Vec<bool>>,
    #[cfg(feature = "hydrate")]
    diff: StoredValue<Option<crate::editor::Diff>, LocalStorage>,
}

impl FileState {
    /// The right side of the diff view, when the person changed it.
    fn edited_text(&self) -> Option<String> {
        #[cfg(feature = "hydrate")]
        {
            let current = self
                .change
                .with_value(|change| change.current.clone().unwrap_or_default());
            self.diff
                .with_value(|diff| diff.as_ref().map(crate::editor::Diff::modified_text))
                .filter(|text| *text != current)
        }
        #[cfg(not(feature = "hydrate"))]
        {
            None
        }
    }
}

/// The change set of task `task_id`, once it is `settled` (reloaded when `version` moves).
#[component]
pub fn TaskReview(
    task_id: String,
    #[prop(into)] settled: Signal<bool>,
    version: RwSignal<u64>,
    on_sent_back: Callback<TaskSummary>,
) -> impl IntoView {
    let task_id = StoredValue::new(task_id);
    let files = RwSignal::new(None::<Result<Vec<FileState>, AppError>>);
    let report = RwSignal::new(None::<TaskApplyReport>);
    let comment = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let toaster = use_toaster();
    Effect::new(move |_| {
        version.track();
        if !settled.get() {
            return;
        }
        leptos::task::spawn_local(async move {
            let loaded = task_changes(task_id.get_value()).await.map(|changes| {
                changes
                    .into_iter()
                    .map(|change| FileState {
                        accepted: RwSignal::new(vec![true; change.hunks.len()]),
                        change: StoredValue::new(change),
                        #[cfg(feature = "hydrate")]
                        diff: StoredValue::new_local(None),
                    })
                    .collect()
            });
            files.set(Some(loaded));
        });
    });
    let all_files = move || match files.get() {
        Some(Ok(files)) => files,
        _ => Vec::new(),
    };
    let apply = move |_| {
        let decisions: Vec<TaskFileDecision> = all_files()
            .iter()
            .map(|file| TaskFileDecision {
                path: file.change.with_value(|change| change.path.clone()),
                accepted: file.accepted.get_untracked(),
                content: file.edited_text(),
            })
            .filter(|decision| {
                decision.content.is_some() || decision.accepted.iter().any(|accepted| *accepted)
            })
            .collect();
        if decisions.is_empty() {
            toaster.show(ToastKind::Info, "No hunk is accepted: nothing to apply.");
            return;
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            let outcome = apply_task_changes(task_id.get_value(), decisions).await;
            busy.set(false);
            match outcome {
                Ok(applied) => {
                    if applied.conflicts.is_empty() {
                        toaster.show(
                            ToastKind::Success,
                            format!(
                                "Applied to {} file(s) as new revisions.",
                                applied.applied.len()
                            ),
                        );
                    } else {
                        toaster.show(
                            ToastKind::Error,
                            "Some hunks conflict with changes made since the task started; those files were not written.",
                        );
                    }
                    report.set(Some(applied));
                }
                Err(error) => toaster.show(ToastKind::Error, error.to_string()),
            }
        });
    };
    let send_back = move |_| {
        let rejected: Vec<(String, usize)> = all_files()
            .iter()
            .flat_map(|file| {
                let path = file.change.with_value(|change| change.path.clone());
                file.accepted
                    .get_untracked()
                    .into_iter()
                    .enumerate()
                    .filter(|(_, accepted)| !accepted)
                    .map(move |(index, _)| (path.clone(), index))
                    .collect::<Vec<_>>()
            })
            .collect();
        let note = comment.get_untracked();
        if rejected.is_empty() && note.trim().is_empty() {
            toaster.show(
                ToastKind::Info,
                "Untick the hunks to send back, or write a comment for the agent.",
            );
            return;
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            let key = format!("reject-{}", super::new_key());
            let outcome = reject_task_changes(task_id.get_value(), rejected, note, Some(key)).await;
            busy.set(false);
            match outcome {
                Ok(task) => {
                    comment.set(String::new());
                    report.set(None);
                    toaster.show(
                        ToastKind::Success,
                        "Sent back: the agent goes on from there.",
                    );
                    on_sent_back.run(task);
                }
                Err(error) => toaster.show(ToastKind::Error, error.to_string()),
            }
        });
    };
    view! {
        <section class="task-review" id="task-review" aria-label="Change set">
            <h2>"Change set"</h2>
            {move || {
                if !settled.get() {
                    return view! {
                        <p class="empty-note">
                            "The change set is ready to review once the task stops (finished, paused or cancelled)."
                        </p>
                    }
                        .into_any();
                }
                match files.get() {
                    None => view! { <p>"Loading the change set…"</p> }.into_any(),
                    Some(Err(error)) => view! { <p role="alert">{error.to_string()}</p> }.into_any(),
                    Some(Ok(list)) if list.is_empty() => {
                        view! { <p class="empty-note">"The agent changed no file."</p> }.into_any()
                    }
                    Some(Ok(list)) => {
                        view! {
                            <p class="review-lead">
                                "Each hunk is accepted unless you untick it. You may edit the right side of a diff before applying: your text is what gets saved."
                            </p>
                            {list.into_iter().map(|file| view! { <FileReview file/> }).collect_view()}
                            <div class="field">
                                <label class="field-label" for="review-comment">"Comment for the agent (sent with the unticked hunks)"</label>
                                <textarea
                                    id="review-comment"
                                    class="input"
                                    rows="2"
                                    prop:value=move || comment.get()
                                    on:input=move |event| comment.set(event_target_value(&event))
                                ></textarea>
                            </div>
                            <div class="page-actions review-actions">
                                <Button id="review-apply" disabled=Signal::derive(move || busy.get()) on_click=Callback::new(apply)>
                                    "Apply accepted changes"
                                </Button>
                                <Button
                                    id="review-send-back"
                                    variant=ButtonVariant::Secondary
                                    disabled=Signal::derive(move || busy.get())
                                    on_click=Callback::new(send_back)
                                >
                                    "Send rejected hunks back"
                                </Button>
                            </div>
                        }
                            .into_any()
                    }
                }
            }}
            {move || report.get().map(|report| view! { <ApplyReportView report/> })}
        </section>
    }
}

#[component]
fn ApplyReportView(report: TaskApplyReport) -> impl IntoView {
    view! {
        <div class="apply-report card" id="apply-report" role="status">
            {(!report.applied.is_empty())
                .then(|| {
                    view! {
                        <p>
                            "Saved as new revisions: "
                            {report.applied.join(", ")}
                        </p>
                    }
                })}
            {report
                .conflicts
                .into_iter()
                .map(|conflict| {
                    let hunks: Vec<String> = conflict
                        .hunks
                        .iter()
                        .map(|index| (index + 1).to_string())
                        .collect();
                    view! {
                        <p class="form-error">
                            {format!(
                                "{}: hunk {} conflicts with a change made to the file since the task started; the file was not written. Open it, or send the hunk back.",
                                conflict.path,
                                hunks.join(", "),
                            )}
                        </p>
                    }
                })
                .collect_view()}
        </div>
    }
}

#[component]
fn FileReview(file: FileState) -> impl IntoView {
    let change = file.change.get_value();
    let host = NodeRef::<leptos::html::Div>::new();
    #[cfg(feature = "hydrate")]
    {
        let preferences = crate::preferences::use_preferences();
        Effect::new(move |_| {
            let Some(element) = host.get() else {
                return;
            };
            leptos::task::spawn_local(async move {
                if let Err(error) = crate::editor::load().await {
                    leptos::logging::warn!("Monaco did not load: {error}");
                    return;
                }
                let change = file.change.get_value();
                let element: &web_sys::HtmlElement = &element;
                let diff = crate::editor::Diff::create(
                    element,
                    change.base.as_deref().unwrap_or(""),
                    change.current.as_deref().unwrap_or(""),
                    language_of(&change.path),
                    crate::workspace::prefers_dark(preferences.theme.get_untracked()),
                    change.current.is_some(),
                );
                file.diff.update_value(|slot| {
                    if let Some(previous) = slot.replace(diff) {
                        previous.dispose();
                    }
                });
            });
        });
        on_cleanup(move || {
            file.diff.update_value(|slot| {
                if let Some(diff) = slot.take() {
                    diff.dispose();
                }
            });
        });
    }
    let added: usize = change.hunks.iter().map(|hunk| hunk.added.len()).sum();
    let removed: usize = change.hunks.iter().map(|hunk| hunk.removed.len()).sum();
    let path = change.path.clone();
    view! {
        <article class="review-file" data-path=change.path.clone()>
            <header class="review-file-heading">
                <h3>{change.path.clone()}</h3>
                <span class=format!("review-operation review-{}", change.operation)>{change.operation.clone()}</span>
                <span class="review-counts">{format!("+{added} −{removed}")}</span>
            </header>
            <div class="diff-host review-diff" node_ref=host></div>
            <ol class="review-hunks">
                {change
                    .hunks
                    .iter()
                    .enumerate()
                    .map(|(index, hunk)| {
                        let label = format!(
                            "Accept hunk {} of {} (lines {}–{})",
                            index + 1,
                            path,
                            hunk.new_range.start + 1,
                            hunk.new_range.end.max(hunk.new_range.start + 1),
                        );
                        let checkbox_id = format!("hunk-{}-{index}", path.replace(['/', '.'], "-"));
                        let label_for = checkbox_id.clone();
                        view! {
                            <li class="review-hunk">
                                <label class="hunk-accept" for=label_for>
                                    <input
                                        type="checkbox"
                                        id=checkbox_id
                                        aria-label=label.clone()
                                        prop:checked=move || {
                                            file.accepted.with(|accepted| accepted.get(index).copied().unwrap_or(false))
                                        }
                                        on:change=move |event| {
                                            let checked = event_target_checked(&event);
                                            file.accepted.update(|accepted| {
                                                if let Some(slot) = accepted.get_mut(index) {
                                                    *slot = checked;
                                                }
                                            });
                                        }
                                    />
                                    {format!(" Hunk {}", index + 1)}
                                </label>
                                <pre class="hunk-text">{hunk_text(hunk)}</pre>
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
        </article>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hunk_reads_as_a_unified_diff() {
        let hunk = TaskHunk {
            base_range: 1..2,
            new_range: 1..3,
            removed: vec!["    a - b\n".into()],
            added: vec!["    a + b\n".into(), "    // fixed".into()],
        };
        assert_eq!(hunk_text(&hunk), "-    a - b\n+    a + b\n+    // fixed\n");
    }

    #[test]
    fn languages_come_from_extensions() {
        assert_eq!(language_of("src/lib.rs"), Some("rust"));
        assert_eq!(language_of("web/App.TSX"), Some("typescript"));
        assert_eq!(language_of("Makefile"), None);
        assert_eq!(language_of("notes.unknown"), None);
    }
}
