//! The context the next message will carry, shown before it is sent: each item with why it is
//! there, its score and its cost, and buttons to pin or drop it for the rest of the conversation.

use leptos::prelude::*;

use super::{ChatState, ensure_conversation};
use crate::api::chat::{preview_context, set_context_choice};
use crate::types::{ContextEntry, EditorContext};

/// How long the draft must rest before the preview follows it.
#[cfg(feature = "hydrate")]
const SETTLE: std::time::Duration = std::time::Duration::from_millis(400);
/// How often the preview asks again while the project is being indexed.
#[cfg(feature = "hydrate")]
const INDEXING_POLL: std::time::Duration = std::time::Duration::from_millis(1000);

/// A person's name for a kind of context item.
pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "selection" => "Selection",
        "current_file" => "Open file",
        "file" => "File",
        "error_location" => "Error at",
        "recent_change" => "Recent change",
        "dependencies" => "Dependencies",
        "symbols" => "Repo map",
        _ => "Context",
    }
}

/// The composer's button that shows or hides the preview, with what it holds.
#[component]
pub fn ContextToggle() -> impl IntoView {
    let state = expect_context::<ChatState>();
    view! {
        <button
            type="button"
            id="chat-context-toggle"
            class="chat-context-note"
            aria-expanded=move || state.context_open.get().to_string()
            aria-controls="chat-context-preview"
            on:click=move |_| state.context_open.update(|open| *open = !*open)
        >
            {move || {
                match state.context_preview.get() {
                    Some(preview) => {
                        let sent = preview.items.iter().filter(|item| item.included).count();
                        format!("Context: {sent} items · {} / {} tokens", preview.used, preview.budget)
                    }
                    None => "Context…".to_owned(),
                }
            }}
        </button>
    }
}

/// The preview itself (shown while the toggle is on).
#[component]
pub fn ContextPreviewPanel(
    /// The file and selection in the editor.
    editor: Option<Callback<(), Option<EditorContext>>>,
) -> impl IntoView {
    let state = expect_context::<ChatState>();
    let preview = state.context_preview;
    let error = RwSignal::new(None::<String>);
    let loading = RwSignal::new(false);
    let requests = StoredValue::new(0u64);

    let refresh = move || {
        requests.update_value(|count| *count += 1);
        let mine = requests.get_value();
        let context = editor.and_then(|editor| editor.run(()));
        let conversation = state.active.get_untracked().map(|active| active.id);
        let project = state.project();
        let mode = state.mode.get_untracked();
        let text = state.draft.get_untracked();
        loading.set(true);
        leptos::task::spawn_local(async move {
            let result = preview_context(conversation, project, mode, text, context).await;
            if requests.get_value() != mine {
                return;
            }
            loading.set(false);
            match result {
                Ok(found) => {
                    error.set(None);
                    preview.set(Some(found));
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };

    // Follow the draft, the mode and the conversation while shown (once the draft rests), and
    // the index while it is being built.
    #[cfg(feature = "hydrate")]
    {
        let changes = StoredValue::new(0u64);
        Effect::new(move |_| {
            let open = state.context_open.get();
            state.draft.track();
            state.mode.track();
            state.active.track();
            if !open {
                return;
            }
            changes.update_value(|count| *count += 1);
            let mine = changes.get_value();
            set_timeout(
                move || {
                    if changes.get_value() == mine && state.context_open.get_untracked() {
                        refresh();
                    }
                },
                SETTLE,
            );
        });
        Effect::new(move |_| {
            let building = preview.with(|preview| {
                preview
                    .as_ref()
                    .and_then(|preview| preview.index.as_ref())
                    .is_some_and(|index| index.phase == "loading" || index.phase == "indexing")
            });
            if building {
                set_timeout(
                    move || {
                        if state.context_open.get_untracked() {
                            refresh();
                        }
                    },
                    INDEXING_POLL,
                );
            }
        });
    }

    let choose = move |key: String, choice: &'static str| {
        leptos::task::spawn_local(async move {
            let conversation = match ensure_conversation(state).await {
                Ok(conversation) => conversation,
                Err(failure) => {
                    error.set(Some(failure));
                    return;
                }
            };
            match set_context_choice(conversation.id, key, choice.to_owned()).await {
                Ok(()) => refresh(),
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    };

    view! {
        <Show when=move || state.context_open.get()>
            <section id="chat-context-preview" class="chat-context-preview" aria-label="Context for the next message" aria-busy=move || loading.get().to_string()>
                <header class="chat-context-preview-head">
                    <strong>"Context for the next message"</strong>
                    {move || preview.get().map(|preview| view! {
                        <span class="chat-context-budget">
                            {format!("{} of {} tokens ({})", preview.used, preview.budget, preview.tokenizer)}
                        </span>
                    })}
                    <button type="button" class="chat-context-refresh" on:click=move |_| refresh() title="Choose again">"↻"</button>
                </header>
                {move || error.get().map(|error| view! { <p class="chat-error" role="alert">{error}</p> })}
                {move || preview.get().and_then(|preview| preview.index).and_then(|index| match index.phase.as_str() {
                    "loading" => Some(view! { <p class="chat-context-index" role="status">"Reading the project's index…"</p> }.into_any()),
                    "indexing" => Some(view! {
                        <p class="chat-context-index" role="status">
                            {format!("Indexing the project: {} of {} files (the map uses what is indexed so far)", index.done, index.total)}
                            <progress max=index.total.to_string() value=index.done.to_string()></progress>
                        </p>
                    }.into_any()),
                    "failed" => Some(view! { <p class="chat-warning" role="status">"The project's index could not be brought up to date; the map may be stale."</p> }.into_any()),
                    _ => None,
                })}
                <ul class="chat-context-items">
                    {move || preview.get().map(|preview| {
                        if preview.items.is_empty() {
                            return view! { <li class="chat-context-empty">"Nothing: open a file or name one in your message."</li> }.into_any();
                        }
                        preview.items.into_iter().map(|item| view! { <ItemRow item choose/> }).collect_view().into_any()
                    })}
                </ul>
                {move || preview.get().filter(|preview| !preview.left_out.is_empty()).map(|preview| view! {
                    <details class="chat-context-left-out">
                        <summary>{
                            let count = preview.left_out.iter().map(|group| group.count).sum::<u32>();
                            format!("{count} {} left out of the index", if count == 1 { "file" } else { "files" })
                        }</summary>
                        <ul>
                            {preview.left_out.into_iter().map(|group| view! {
                                <li>{format!("{} {}: {}{}", group.count, group.reason, group.examples.join(", "), if group.count as usize > group.examples.len() { ", …" } else { "" })}</li>
                            }).collect_view()}
                        </ul>
                    </details>
                })}
            </section>
        </Show>
    }
}

#[component]
fn ItemRow<F>(item: ContextEntry, choose: F) -> impl IntoView
where
    F: Fn(String, &'static str) + Copy + Send + Sync + 'static,
{
    let pinned = item.choice.as_deref() == Some("pinned");
    let dropped = item.choice.as_deref() == Some("dropped");
    let pin_key = item.key.clone();
    let drop_key = item.key.clone();
    let score = if item.score > 0 {
        format!("{}%", item.score / 10)
    } else {
        String::new()
    };
    view! {
        <li class="chat-context-row" class:left-out=!item.included data-key=item.key.clone() data-included=item.included.to_string()>
            <span class="chat-context-label" title=item.label.clone()>
                <span class="chat-context-kind">{kind_label(&item.kind)}</span>
                {item.label.clone()}
            </span>
            <span class="chat-context-score" title="Relevance">{score}</span>
            <span class="chat-context-tokens">{format!("{} tok", item.tokens)}</span>
            <button
                type="button"
                class="chat-context-pin"
                aria-pressed=pinned.to_string()
                title=if pinned { "Pinned: always sent in this conversation (click to release)" } else { "Always send this in this conversation" }
                on:click=move |_| choose(pin_key.clone(), if pinned { "" } else { "pinned" })
            >"Pin"</button>
            <button
                type="button"
                class="chat-context-drop"
                aria-pressed=dropped.to_string()
                title=if dropped { "Dropped: never sent in this conversation (click to release)" } else { "Never send this in this conversation" }
                on:click=move |_| choose(drop_key.clone(), if dropped { "" } else { "dropped" })
            >"Drop"</button>
            <span class="chat-context-reason">{item.reason}</span>
        </li>
    }
}
