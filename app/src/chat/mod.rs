//! The chat: a panel beside the editor (and a page of its own). Conversations per project,
//! answers streaming in from the server's events endpoint (resumed after a reload from the last
//! event seen), the seven modes and the person's own, a model selector, safe Markdown with code
//! blocks that can be copied or applied to a file.

mod context;
#[cfg(feature = "hydrate")]
mod follow;
mod modes;

use leptos::prelude::*;

use crate::api::chat::{
    continue_answer, create_conversation, delete_conversation, edit_message, list_conversations,
    load_chat_setup, open_conversation, regenerate_answer, rename_conversation, send_message,
    set_conversation_mode, set_conversation_model, set_default_model, stop_answer,
};
use crate::components::{Button, ButtonVariant, Modal, ToastKind, use_toaster};
use crate::types::{ChatMessage, ChatSetup, ConversationSummary, EditorContext};

/// A code block the person wants applied to a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyRequest {
    /// The path the fence named, if any.
    pub path: Option<String>,
    pub code: String,
    pub language: Option<String>,
}

/// One message on screen.
#[derive(Clone)]
pub struct Slot {
    pub id: String,
    pub data: RwSignal<ChatMessage>,
    /// Seconds spent waiting for the first token.
    pub waited: RwSignal<u32>,
}

impl Slot {
    fn new(message: ChatMessage) -> Self {
        Self {
            id: message.id.clone(),
            data: RwSignal::new(message),
            waited: RwSignal::new(0),
        }
    }
}

/// The chat's state, shared by its parts.
#[derive(Clone, Copy)]
pub struct ChatState {
    pub project_id: StoredValue<Option<String>>,
    pub setup: RwSignal<Option<ChatSetup>>,
    pub conversations: RwSignal<Vec<ConversationSummary>>,
    pub search: RwSignal<String>,
    pub active: RwSignal<Option<ConversationSummary>>,
    pub messages: RwSignal<Vec<Slot>>,
    pub list_open: RwSignal<bool>,
    pub draft: RwSignal<String>,
    pub error: RwSignal<Option<String>>,
    pub sending: RwSignal<bool>,
    /// The mode and model for the next new conversation.
    pub mode: RwSignal<String>,
    pub model: RwSignal<String>,
    /// Set once Monaco (whose colorizer highlights code blocks) is loaded.
    pub highlighter_ready: RwSignal<bool>,
    /// The context preview is shown.
    pub context_open: RwSignal<bool>,
    /// Mode or model changes of the open conversation still on their way to the server: a
    /// message waits for them (it must go with the mode chosen).
    pub updating: RwSignal<u32>,
    /// The context the next message would carry (as last asked).
    pub context_preview: RwSignal<Option<crate::types::ContextPreview>>,
    /// Counts conversation switches: a conversation that finishes loading after the person
    /// moved on to another one is not shown (nor are its answers followed).
    switches: StoredValue<u64>,
    #[cfg(feature = "hydrate")]
    followers: StoredValue<std::collections::HashMap<String, follow::Follower>, LocalStorage>,
}

impl ChatState {
    fn new(project_id: Option<String>) -> Self {
        Self {
            project_id: StoredValue::new(project_id),
            setup: RwSignal::new(None),
            conversations: RwSignal::new(Vec::new()),
            search: RwSignal::new(String::new()),
            active: RwSignal::new(None),
            messages: RwSignal::new(Vec::new()),
            list_open: RwSignal::new(false),
            draft: RwSignal::new(String::new()),
            error: RwSignal::new(None),
            sending: RwSignal::new(false),
            mode: RwSignal::new("chat".into()),
            model: RwSignal::new(String::new()),
            highlighter_ready: RwSignal::new(false),
            context_open: RwSignal::new(false),
            updating: RwSignal::new(0),
            context_preview: RwSignal::new(None),
            switches: StoredValue::new(0),
            #[cfg(feature = "hydrate")]
            followers: StoredValue::new_local(std::collections::HashMap::new()),
        }
    }

    fn project(&self) -> Option<String> {
        self.project_id.get_value()
    }

    fn storage_key(&self) -> String {
        format!(
            "async-coder:chat:{}",
            self.project().unwrap_or_else(|| "none".into())
        )
    }

    /// Streams an answer into its slot from the event after `after`.
    #[cfg_attr(not(feature = "hydrate"), allow(unused_variables))]
    fn follow(self, slot: &Slot, after: u64) {
        #[cfg(feature = "hydrate")]
        follow::start(self, slot.clone(), after);
    }

    fn stop_following(self) {
        #[cfg(feature = "hydrate")]
        self.followers.update_value(|followers| {
            for (_, follower) in followers.drain() {
                follower.close();
            }
        });
    }

    fn slot(&self, id: &str) -> Option<Slot> {
        self.messages
            .with_untracked(|slots| slots.iter().find(|slot| slot.id == id).cloned())
    }
}

fn remember_active(state: ChatState, id: Option<&str>) {
    if let Some(storage) = window().local_storage().ok().flatten() {
        let outcome = match id {
            Some(id) => storage.set_item(&state.storage_key(), id),
            None => storage.remove_item(&state.storage_key()),
        };
        if outcome.is_err() {
            leptos::logging::warn!("could not remember the open conversation");
        }
    }
}

fn remembered_active(state: ChatState) -> Option<String> {
    window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|storage| storage.get_item(&state.storage_key()).ok().flatten())
}

/// Reloads the list of conversations.
async fn reload_list(state: ChatState) -> Result<(), String> {
    let list = list_conversations(state.project(), state.search.get_untracked())
        .await
        .map_err(|error| error.to_string())?;
    state.conversations.set(list);
    Ok(())
}

/// Opens a conversation: its messages, and answers still being written stream in.
/// Marks a switch of conversation; returns its number.
fn switch(state: ChatState) -> u64 {
    state.stop_following();
    state.switches.update_value(|count| *count += 1);
    state.switches.get_value()
}

async fn open(state: ChatState, id: String) {
    let this_switch = switch(state);
    let loaded = open_conversation(id.clone()).await;
    if state.switches.get_value() != this_switch {
        return;
    }
    match loaded {
        Ok(view) => {
            remember_active(state, Some(&id));
            state.mode.set(view.conversation.mode.clone());
            state
                .model
                .set(view.conversation.model.clone().unwrap_or_default());
            state.active.set(Some(view.conversation));
            let slots: Vec<Slot> = view.messages.into_iter().map(Slot::new).collect();
            state.messages.set(slots.clone());
            for slot in slots {
                if slot.data.with_untracked(|data| data.status == "streaming") {
                    // The stored text may lag behind: replay every event from the first.
                    slot.data.update(|data| data.content.clear());
                    state.follow(&slot, 0);
                }
            }
            state.list_open.set(false);
            state.error.set(None);
        }
        Err(error) => {
            remember_active(state, None);
            state.error.set(Some(error.to_string()));
        }
    }
}

fn new_conversation(state: ChatState) {
    switch(state);
    state.active.set(None);
    state.messages.set(Vec::new());
    state.list_open.set(false);
    remember_active(state, None);
}

/// The open conversation, created first when there is none (with the chosen mode and model).
async fn ensure_conversation(state: ChatState) -> Result<ConversationSummary, String> {
    if let Some(conversation) = state.active.get_untracked() {
        return Ok(conversation);
    }
    let model = Some(state.model.get_untracked()).filter(|model| !model.is_empty());
    let conversation = create_conversation(state.project(), state.mode.get_untracked(), model)
        .await
        .map_err(|error| error.to_string())?;
    remember_active(state, Some(&conversation.id));
    state.active.set(Some(conversation.clone()));
    Ok(conversation)
}

/// Sends the draft (creating the conversation first when there is none).
fn send(state: ChatState, context: Option<Callback<(), Option<EditorContext>>>) {
    let text = state.draft.get_untracked();
    if text.trim().is_empty() || state.sending.get_untracked() || state.updating.get_untracked() > 0
    {
        return;
    }
    let editor = context.and_then(|context| context.run(()));
    state.sending.set(true);
    state.error.set(None);
    leptos::task::spawn_local(async move {
        let this_switch = state.switches.get_value();
        let conversation = match ensure_conversation(state).await {
            Ok(conversation) => conversation,
            Err(error) => {
                state.error.set(Some(error));
                state.sending.set(false);
                return;
            }
        };
        let sent = send_message(conversation.id.clone(), text, editor).await;
        if state.switches.get_value() != this_switch {
            // The person opened another conversation meanwhile: the message is stored in its
            // own, which shows it when opened again.
            state.sending.set(false);
            return;
        }
        match sent {
            Ok(sent) => {
                state.draft.set(String::new());
                let answer = Slot::new(sent.answer);
                state.messages.update(|slots| {
                    slots.push(Slot::new(sent.question));
                    slots.push(answer.clone());
                });
                state.active.update(|active| {
                    if let Some(active) = active {
                        active.title = sent.title.clone();
                    }
                });
                state.follow(&answer, 0);
                if let Err(error) = reload_list(state).await {
                    leptos::logging::warn!("{error}");
                }
            }
            Err(error) => state.error.set(Some(error.to_string())),
        }
        state.sending.set(false);
    });
}

/// Removes the slots from `id` on (what a regeneration or an edit replaces).
fn drop_from(state: ChatState, id: &str, keep_it: bool) {
    state.messages.update(|slots| {
        if let Some(position) = slots.iter().position(|slot| slot.id == id) {
            slots.truncate(if keep_it { position + 1 } else { position });
        }
    });
}

#[component]
pub fn ChatPanel(
    /// The project whose conversations these are (none on the chat page).
    #[prop(optional, into)]
    project_id: Option<String>,
    /// The file and selection in the editor, sent with each message.
    #[prop(optional)]
    context: Option<Callback<(), Option<EditorContext>>>,
    /// Applies a code block to a file (only inside a workspace).
    #[prop(optional)]
    on_apply: Option<Callback<ApplyRequest>>,
    /// Text to attach to the message being written (a run's output from the Run panel);
    /// taken and cleared as it comes.
    #[prop(optional)]
    incoming: Option<RwSignal<Option<String>>>,
) -> impl IntoView {
    let state = ChatState::new(project_id);
    provide_context(state);
    if let Some(incoming) = incoming {
        Effect::new(move |_| {
            if let Some(text) = incoming.get() {
                state.draft.update(|draft| {
                    if !draft.is_empty() && !draft.ends_with('\n') {
                        draft.push('\n');
                    }
                    draft.push_str(&text);
                });
                incoming.set(None);
            }
        });
    }
    let toaster = use_toaster();
    let modes_open = RwSignal::new(false);
    let shown_context = RwSignal::new(None::<ChatMessage>);
    let context_open = RwSignal::new(false);
    Effect::new(move |_| {
        if !context_open.get() {
            shown_context.set(None);
        }
    });
    Effect::new(move |_| {
        if shown_context.with(Option::is_some) {
            context_open.set(true);
        }
    });

    // Load once in the browser: the setup, the list, and the conversation open last time.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            // Monaco's colorizer highlights code blocks (the workspace loads it anyway).
            match crate::editor::load().await {
                Ok(()) => state.highlighter_ready.set(true),
                Err(error) => leptos::logging::warn!("code blocks stay plain: {error}"),
            }
        });
        leptos::task::spawn_local(async move {
            match load_chat_setup().await {
                Ok(setup) => state.setup.set(Some(setup)),
                Err(error) => state.error.set(Some(error.to_string())),
            }
            if let Err(error) = reload_list(state).await {
                state.error.set(Some(error));
                return;
            }
            let remembered = remembered_active(state).filter(|id| {
                state
                    .conversations
                    .with_untracked(|list| list.iter().any(|conversation| &conversation.id == id))
            });
            if let Some(id) = remembered {
                open(state, id).await;
            }
        });
    });
    on_cleanup(move || state.stop_following());

    let has_provider = move || {
        state
            .setup
            .with(|setup| setup.as_ref().is_none_or(|setup| setup.has_provider))
    };
    let streaming = move || {
        state.messages.with(|slots| {
            slots
                .iter()
                .any(|slot| slot.data.with(|data| data.status == "streaming"))
        })
    };

    // Keep the newest text in view: after opening a conversation or sending, and while an
    // answer streams, unless the person scrolled up to read.
    let list = NodeRef::<leptos::html::Div>::new();
    #[cfg(feature = "hydrate")]
    {
        let count = StoredValue::new(0_usize);
        Effect::new(move |_| {
            let slots = state.messages.get();
            if let Some(last) = slots.last() {
                last.data.track();
            }
            let Some(element) = list.get_untracked() else {
                return;
            };
            let grew = slots.len() != count.get_value();
            count.set_value(slots.len());
            let near_bottom =
                element.scroll_height() - element.scroll_top() - element.client_height() < 120;
            if grew || near_bottom {
                element.set_scroll_top(element.scroll_height());
            }
        });
    }
    let mode_options = move || {
        state
            .setup
            .with(|setup| setup.as_ref().map(|setup| setup.modes.clone()))
            .unwrap_or_default()
    };
    let change_mode = move |name: String| {
        state.mode.set(name.clone());
        if let Some(conversation) = state.active.get_untracked() {
            state.updating.update(|count| *count += 1);
            leptos::task::spawn_local(async move {
                match set_conversation_mode(conversation.id, name).await {
                    Ok(updated) => state.active.set(Some(updated)),
                    Err(error) => state.error.set(Some(error.to_string())),
                }
                state
                    .updating
                    .update(|count| *count = count.saturating_sub(1));
            });
        }
    };
    let change_model = move |model: String| {
        state.model.set(model.clone());
        if let Some(conversation) = state.active.get_untracked() {
            state.updating.update(|count| *count += 1);
            leptos::task::spawn_local(async move {
                match set_conversation_model(conversation.id, model).await {
                    Ok(updated) => state.active.set(Some(updated)),
                    Err(error) => state.error.set(Some(error.to_string())),
                }
                state
                    .updating
                    .update(|count| *count = count.saturating_sub(1));
            });
        }
    };
    let make_default = move |_| {
        let model = state.model.get_untracked();
        leptos::task::spawn_local(async move {
            match set_default_model(model.clone()).await {
                Ok(saved) => {
                    state.setup.update(|setup| {
                        if let Some(setup) = setup {
                            setup.default_model = saved.clone();
                        }
                    });
                    toaster.show(
                        ToastKind::Success,
                        match saved {
                            Some(model) => format!("New conversations use {model}."),
                            None => "New conversations use the mode's models.".to_owned(),
                        },
                    );
                }
                Err(error) => toaster.show(ToastKind::Error, error.to_string()),
            }
        });
    };
    let current_mode = move || {
        let name = state.mode.get();
        state.setup.with(|setup| {
            setup
                .as_ref()
                .and_then(|setup| setup.modes.iter().find(|mode| mode.name == name).cloned())
        })
    };
    // The async mode starts background tasks instead of answering in the conversation.
    let is_async = move || current_mode().is_some_and(|mode| mode.output == "agent");

    view! {
        <section class="chat-panel" aria-label="AI chat">
            <div class="chat-header">
                <Button
                    id="chat-conversations"
                    variant=ButtonVariant::Ghost
                    title="Conversations"
                    on_click=Callback::new(move |_| state.list_open.update(|open| *open = !*open))
                >
                    "☰"
                </Button>
                <h2 class="chat-title" id="chat-title">
                    {move || state.active.get().map(|conversation| conversation.title).unwrap_or_else(|| "New conversation".into())}
                </h2>
                <span class="chat-cost" title="Tokens and cost of this conversation">
                    {move || state.active.get().filter(|conversation| conversation.input_tokens + conversation.output_tokens > 0).map(|conversation| {
                        format!("{} tokens · {}", conversation.input_tokens + conversation.output_tokens, conversation.cost)
                    })}
                </span>
                <Button
                    id="chat-new"
                    variant=ButtonVariant::Ghost
                    title="New conversation"
                    on_click=Callback::new(move |_| new_conversation(state))
                >
                    "+ New"
                </Button>
            </div>
            <Show when=move || state.list_open.get()>
                <ConversationList/>
            </Show>
            <div class="chat-controls">
                <label class="chat-control">
                    <span>"Mode"</span>
                    <select
                        id="chat-mode"
                        prop:value=move || state.mode.get()
                        on:change=move |event| change_mode(event_target_value(&event))
                    >
                        {move || mode_options().into_iter().map(|mode| {
                            let name = mode.name.clone();
                            let label = if !mode.available {
                                format!("{} (coming)", mode.label)
                            } else if mode.plan_refusal.is_some() {
                                format!("{} (not in your plan)", mode.label)
                            } else {
                                mode.label.clone()
                            };
                            let title = mode.plan_refusal.clone().unwrap_or_else(|| mode.description.clone());
                            view! {
                                <option value=mode.name.clone() disabled=!mode.available || mode.plan_refusal.is_some() selected=move || state.mode.get() == name title=title>
                                    {label}
                                </option>
                            }
                        }).collect_view()}
                    </select>
                </label>
                <label class="chat-control">
                    <span>"Model"</span>
                    <select
                        id="chat-model"
                        prop:value=move || state.model.get()
                        on:change=move |event| change_model(event_target_value(&event))
                    >
                        <option value="" selected=move || state.model.get().is_empty()>
                            {move || match state.setup.get().and_then(|setup| setup.default_model) {
                                Some(model) => format!("Default ({model})"),
                                None => "Default (the mode's models, else the first)".to_owned(),
                            }}
                        </option>
                        {move || state.setup.get().map(|setup| setup.models).unwrap_or_default().into_iter().map(|model| {
                            let route = model.route.clone();
                            let mut label = format!("{} — {}", model.display_name, model.route);
                            if let Some(window) = model.context_window {
                                label.push_str(&format!(" · {}k context", window / 1000));
                            }
                            if let (Some(input), Some(output)) = (&model.input_price, &model.output_price) {
                                label.push_str(&format!(" · {input}/{output} per M"));
                            }
                            view! { <option value=model.route.clone() selected=move || state.model.get() == route>{label}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <Button
                    id="chat-default-model"
                    variant=ButtonVariant::Ghost
                    title="Use this model for new conversations"
                    on_click=Callback::new(make_default)
                >
                    "Set default"
                </Button>
                <Button
                    id="chat-modes"
                    variant=ButtonVariant::Ghost
                    title="Your own modes"
                    on_click=Callback::new(move |_| modes_open.set(true))
                >
                    "Modes…"
                </Button>
            </div>
            <p class="chat-mode-description">{move || current_mode().map(|mode| mode.description)}</p>
            {move || {
                current_mode()
                    .and_then(|mode| mode.plan_refusal)
                    .map(|reason| view! { <p class="chat-empty" id="chat-mode-refused" role="status">{reason}</p> })
            }}
            <Show when=move || !has_provider()>
                <p class="chat-empty" id="chat-no-provider" role="status">
                    "No AI provider is configured. "
                    <a href="/settings/providers">"Add a key or a local server in Settings → AI providers"</a>
                    " to start chatting."
                </p>
            </Show>
            {move || state.setup.get().filter(|setup| !setup.problems.is_empty()).map(|setup| view! {
                <p class="chat-warning" role="status">{format!("Some providers could not be asked for their models: {}", setup.problems.join("; "))}</p>
            })}
            {move || is_async().then(|| view! { <crate::tasks::ChatTasks project_id=state.project() model=state.model/> })}
            <div class="chat-messages" id="chat-messages" aria-live="polite" node_ref=list hidden=is_async>
                <For
                    each=move || state.messages.get()
                    key=|slot| slot.id.clone()
                    children=move |entry| view! { <MessageView entry shown_context on_apply/> }
                />
                <Show when=move || state.messages.with(Vec::is_empty) && has_provider()>
                    <p class="chat-hint">"Ask about your code. The open file and your selection are sent along; the mode decides how the model answers."</p>
                </Show>
            </div>
            {move || state.error.get().map(|error| view! { <p class="chat-error" role="alert">{error}</p> })}
            <div hidden=is_async>
                <context::ContextPreviewPanel editor=context/>
            </div>
            <form
                class="chat-composer"
                hidden=is_async
                on:submit=move |event| {
                    event.prevent_default();
                    send(state, context);
                }
            >
                <textarea
                    id="chat-input"
                    aria-label="Message"
                    placeholder=move || if has_provider() { "Ask something… (Ctrl+Enter sends)" } else { "Add an AI provider first" }
                    prop:value=move || state.draft.get()
                    on:input=move |event| state.draft.set(event_target_value(&event))
                    on:keydown=move |event| {
                        if event.key() == "Enter" && (event.ctrl_key() || event.meta_key()) {
                            event.prevent_default();
                            send(state, context);
                        }
                    }
                    rows="3"
                ></textarea>
                <div class="chat-composer-actions">
                    <context::ContextToggle/>
                    <Button
                        id="chat-send"
                        kind="submit"
                        disabled=Signal::derive(move || {
                            state.sending.get() || state.updating.get() > 0 || !has_provider() || streaming()
                                || current_mode().is_some_and(|mode| mode.plan_refusal.is_some())
                        })
                    >
                        {move || if state.sending.get() { "Sending…" } else { "Send" }}
                    </Button>
                </div>
            </form>
            <Modal id="chat-context" title="What was sent" open=context_open>
                {move || shown_context.get().map(|message| view! { <ContextView message/> })}
            </Modal>
            <modes::ModesDialog open=modes_open/>
        </section>
    }
}

#[component]
fn ConversationList() -> impl IntoView {
    let state = expect_context::<ChatState>();
    let renaming = RwSignal::new(None::<String>);
    let rename_text = RwSignal::new(String::new());
    let confirming = RwSignal::new(None::<String>);
    let search = move |text: String| {
        state.search.set(text);
        leptos::task::spawn_local(async move {
            if let Err(error) = reload_list(state).await {
                state.error.set(Some(error));
            }
        });
    };
    let rename = move |id: String| {
        let title = rename_text.get_untracked();
        leptos::task::spawn_local(async move {
            match rename_conversation(id, title).await {
                Ok(updated) => {
                    if state.active.with_untracked(|active| {
                        active
                            .as_ref()
                            .is_some_and(|active| active.id == updated.id)
                    }) {
                        state.active.set(Some(updated));
                    }
                    renaming.set(None);
                    if let Err(error) = reload_list(state).await {
                        state.error.set(Some(error));
                    }
                }
                Err(error) => state.error.set(Some(error.to_string())),
            }
        });
    };
    let delete = move |id: String| {
        leptos::task::spawn_local(async move {
            match delete_conversation(id.clone()).await {
                Ok(()) => {
                    if state.active.with_untracked(|active| {
                        active.as_ref().is_some_and(|active| active.id == id)
                    }) {
                        new_conversation(state);
                    }
                    confirming.set(None);
                    if let Err(error) = reload_list(state).await {
                        state.error.set(Some(error));
                    }
                }
                Err(error) => state.error.set(Some(error.to_string())),
            }
        });
    };
    view! {
        <div class="chat-list" id="chat-list">
            <input
                type="search"
                id="chat-search"
                class="input"
                placeholder="Search conversations"
                aria-label="Search conversations"
                prop:value=move || state.search.get()
                on:input=move |event| search(event_target_value(&event))
            />
            <ul>
                <For
                    each=move || state.conversations.get()
                    key=|conversation| (conversation.id.clone(), conversation.title.clone(), conversation.updated_at.clone())
                    children=move |conversation| {
                        let id = conversation.id.clone();
                        let open_id = id.clone();
                        let rename_id = id.clone();
                        let save_id = id.clone();
                        let delete_id = id.clone();
                        let confirm_id = id.clone();
                        let is_renaming = {
                            let id = id.clone();
                            move || renaming.get().as_deref() == Some(id.as_str())
                        };
                        let is_confirming = {
                            let id = id.clone();
                            move || confirming.get().as_deref() == Some(id.as_str())
                        };
                        let title = conversation.title.clone();
                        view! {
                            <li class="chat-list-item">
                                <Show
                                    when=is_renaming.clone()
                                    fallback=move || {
                                        let open_id = open_id.clone();
                                        view! {
                                            <button type="button" class="chat-list-open" on:click=move |_| {
                                                let id = open_id.clone();
                                                leptos::task::spawn_local(open(state, id));
                                            }>
                                                <span class="chat-list-title">{conversation.title.clone()}</span>
                                                <span class="chat-list-meta">{format!("{} · {}", conversation.mode, conversation.cost)}</span>
                                            </button>
                                        }
                                    }
                                >
                                    <input
                                        class="input"
                                        aria-label="New title"
                                        prop:value=move || rename_text.get()
                                        on:input=move |event| rename_text.set(event_target_value(&event))
                                    />
                                    <button type="button" on:click={
                                        let save_id = save_id.clone();
                                        move |_| rename(save_id.clone())
                                    }>"Save"</button>
                                </Show>
                                <button type="button" class="chat-list-action" title="Rename" on:click={
                                    let title = title.clone();
                                    let rename_id = rename_id.clone();
                                    move |_| {
                                        rename_text.set(title.clone());
                                        renaming.set(Some(rename_id.clone()));
                                    }
                                }>"Rename"</button>
                                <Show
                                    when=is_confirming.clone()
                                    fallback={
                                        let confirm_id = confirm_id.clone();
                                        move || {
                                            let confirm_id = confirm_id.clone();
                                            view! {
                                                <button type="button" class="chat-list-action" title="Delete" on:click=move |_| confirming.set(Some(confirm_id.clone()))>"Delete"</button>
                                            }
                                        }
                                    }
                                >
                                    <button type="button" class="chat-list-action danger" on:click={
                                        let delete_id = delete_id.clone();
                                        move |_| delete(delete_id.clone())
                                    }>"Confirm delete"</button>
                                </Show>
                            </li>
                        }
                    }
                />
            </ul>
            <Show when=move || state.conversations.with(Vec::is_empty)>
                <p class="chat-hint">{move || if state.search.get().is_empty() { "No conversations yet." } else { "No conversation matches." }}</p>
            </Show>
        </div>
    }
}

/// The text of a code block (its `code` element's text) and what its fence named.
#[cfg(feature = "hydrate")]
fn code_block_of(target: &web_sys::Element) -> Option<(String, ApplyRequest)> {
    let button = target.closest("button[data-action]").ok().flatten()?;
    let action = button.get_attribute("data-action")?;
    let block = button.closest(".code-block").ok().flatten()?;
    let code_element = block.query_selector("code").ok().flatten()?;
    // Highlighting rewrites the element; the text as written is kept in `data-source`.
    let code = code_element
        .get_attribute("data-source")
        .or_else(|| code_element.text_content())?;
    Some((
        action,
        ApplyRequest {
            path: block.get_attribute("data-path"),
            code,
            language: block.get_attribute("data-lang"),
        },
    ))
}

#[cfg(feature = "hydrate")]
fn copy_text(text: String, toaster: crate::components::Toaster) {
    let clipboard = window().navigator().clipboard();
    let promise = clipboard.write_text(&text);
    leptos::task::spawn_local(async move {
        match wasm_bindgen_futures::JsFuture::from(promise).await {
            Ok(_) => toaster.show(ToastKind::Success, "Copied."),
            Err(_) => toaster.show(ToastKind::Error, "The browser did not allow copying."),
        }
    });
}

#[component]
#[cfg_attr(not(feature = "hydrate"), allow(unused_variables))]
fn MessageView(
    entry: Slot,
    shown_context: RwSignal<Option<ChatMessage>>,
    on_apply: Option<Callback<ApplyRequest>>,
) -> impl IntoView {
    let state = expect_context::<ChatState>();
    let toaster = use_toaster();
    let data = entry.data;
    let waited = entry.waited;
    let id = entry.id.clone();
    let editing = RwSignal::new(false);
    let edit_text = RwSignal::new(String::new());
    // A request of this message's buttons is on its way: they wait (no double start).
    let busy = RwSignal::new(false);
    let body = NodeRef::<leptos::html::Div>::new();
    let role = move || data.with(|data| data.role.clone());
    let is_user = move || data.with(|data| data.role == "user");
    let status = move || data.with(|data| data.status.clone());
    let html = move || data.with(|data| crate::markdown::render(&data.content));

    #[cfg(feature = "hydrate")]
    {
        let preferences = crate::preferences::use_preferences();
        Effect::new(move |_| {
            let finished = data.with(|data| data.status != "streaming");
            data.track();
            if !finished || !state.highlighter_ready.get() {
                return;
            }
            if let Some(element) = body.get() {
                let element: &web_sys::Element = &element;
                crate::editor::colorize(
                    element,
                    crate::workspace::prefers_dark(preferences.theme.get_untracked()),
                );
            }
        });
    }

    let on_body_click = move |event: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(target) = event
                .target()
                .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
            else {
                return;
            };
            let Some((action, request)) = code_block_of(&target) else {
                return;
            };
            match action.as_str() {
                "copy" => copy_text(request.code, toaster),
                "apply" => match on_apply {
                    Some(apply) => apply.run(request),
                    None => toaster.show(
                        ToastKind::Info,
                        "Open this conversation in a project's workspace to apply code to its files.",
                    ),
                },
                _ => {}
            }
        }
        #[cfg(not(feature = "hydrate"))]
        drop(event);
    };

    let stop = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
            busy.set(true);
            leptos::task::spawn_local(async move {
                if let Err(error) = stop_answer(id).await {
                    state.error.set(Some(error.to_string()));
                }
                busy.set(false);
            });
        }
    };
    let regenerate = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
            busy.set(true);
            leptos::task::spawn_local(async move {
                match regenerate_answer(id.clone()).await {
                    Ok(answer) => {
                        drop_from(state, &id, false);
                        let slot = Slot::new(answer);
                        state.messages.update(|slots| slots.push(slot.clone()));
                        state.follow(&slot, 0);
                    }
                    Err(error) => state.error.set(Some(error.to_string())),
                }
                busy.set(false);
            });
        }
    };
    let continue_it = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
            busy.set(true);
            leptos::task::spawn_local(async move {
                match continue_answer(id.clone()).await {
                    Ok(answer) => {
                        if let Some(slot) = state.slot(&id) {
                            slot.data.set(ChatMessage {
                                content: String::new(),
                                ..answer
                            });
                            slot.waited.set(0);
                            state.follow(&slot, 0);
                        }
                    }
                    Err(error) => state.error.set(Some(error.to_string())),
                }
                busy.set(false);
            });
        }
    };
    let resend = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
            let text = edit_text.get_untracked();
            busy.set(true);
            leptos::task::spawn_local(async move {
                match edit_message(id.clone(), text).await {
                    Ok(sent) => {
                        editing.set(false);
                        drop_from(state, &id, true);
                        if let Some(slot) = state.slot(&id) {
                            slot.data.set(sent.question);
                        }
                        let answer = Slot::new(sent.answer);
                        state.messages.update(|slots| slots.push(answer.clone()));
                        state.follow(&answer, 0);
                    }
                    Err(error) => state.error.set(Some(error.to_string())),
                }
                busy.set(false);
            });
        }
    };
    let copy_message = move |_| {
        #[cfg(feature = "hydrate")]
        copy_text(data.get_untracked().content, toaster);
    };

    view! {
        <article
            class="chat-message"
            class:chat-user=is_user
            class:chat-assistant=move || !is_user()
            data-status=status
            data-id=id.clone()
        >
            <header class="chat-message-header">
                <span class="chat-role">{move || if is_user() { "You".to_owned() } else { "Assistant".to_owned() }}</span>
                <span class="chat-meta">
                    {move || data.with(|data| {
                        let mut parts = Vec::new();
                        if let Some(mode) = &data.mode {
                            parts.push(mode.clone());
                        }
                        if let Some(model) = &data.model {
                            parts.push(model.clone());
                        }
                        if let Some(tokens) = data.tokens {
                            parts.push(format!("{} in / {} out tokens", tokens.input, tokens.output));
                        }
                        if let Some(cost) = &data.cost {
                            parts.push(cost.clone());
                        }
                        parts.join(" · ")
                    })}
                </span>
                {move || {
                    let status = status();
                    (status != "complete" && !is_user()).then(|| view! {
                        <span class=format!("chat-status chat-status-{status}")>{status.clone()}</span>
                    })
                }}
            </header>
            {move || data.with(|data| (!data.fallback.is_empty()).then(|| {
                let notes: Vec<String> = data.fallback.iter().map(|attempt| format!("{} ({}): {}", attempt.model, crate::types::provider_display_name(&attempt.provider), attempt.reason)).collect();
                view! { <p class="chat-fallback">{format!("Answered by {} after: {}", data.model.clone().unwrap_or_default(), notes.join("; "))}</p> }
            }))}
            <Show
                when=move || editing.get()
                fallback=move || view! { <div class="markdown chat-body" node_ref=body inner_html=html on:click=on_body_click></div> }
            >
                <textarea class="chat-edit" aria-label="Edit message" prop:value=move || edit_text.get() on:input=move |event| edit_text.set(event_target_value(&event)) rows="3"></textarea>
                <div class="chat-actions">
                    <button type="button" class="chat-action" disabled=move || busy.get() on:click=resend.clone()>"Send"</button>
                    <button type="button" class="chat-action" on:click=move |_| editing.set(false)>"Cancel"</button>
                </div>
            </Show>
            {move || (status() == "streaming" && data.with(|data| data.content.is_empty())).then(|| view! {
                <p class="chat-waiting" role="status">
                    <span class="chat-dots" aria-hidden="true"></span>
                    {move || {
                        let model = data.with(|data| data.model.clone());
                        let seconds = waited.get();
                        match model {
                            Some(model) => format!("{model} is thinking… {seconds} s"),
                            None => format!("Waiting for the model… {seconds} s"),
                        }
                    }}
                </p>
            })}
            {move || data.with(|data| data.reason.clone()).map(|reason| view! { <p class="chat-reason">{reason}</p> })}
            <footer class="chat-actions">
                <Show when=move || status() == "streaming">
                    <button type="button" class="chat-action chat-stop" disabled=move || busy.get() on:click=stop.clone()>"Stop"</button>
                </Show>
                <button type="button" class="chat-action" on:click=copy_message>"Copy"</button>
                <Show when=move || is_user() && status() != "streaming">
                    <button type="button" class="chat-action chat-edit-button" on:click=move |_| {
                        edit_text.set(data.get_untracked().content);
                        editing.set(true);
                    }>"Edit"</button>
                </Show>
                <Show when=move || !is_user() && status() != "streaming">
                    <button type="button" class="chat-action chat-regenerate" disabled=move || busy.get() on:click=regenerate.clone()>"Regenerate"</button>
                </Show>
                <Show when=move || !is_user() && matches!(status().as_str(), "interrupted" | "failed")>
                    <button type="button" class="chat-action chat-continue" disabled=move || busy.get() on:click=continue_it.clone()>"Continue"</button>
                </Show>
                <Show when=move || data.with(|data| !data.context.is_empty() || data.system_prompt.is_some())>
                    <button type="button" class="chat-action chat-show-context" on:click=move |_| shown_context.set(Some(data.get_untracked()))>
                        {move || if is_user() { "Context sent" } else { "Prompt" }}
                    </button>
                </Show>
                <span class="chat-role-tag" hidden>{role}</span>
            </footer>
        </article>
    }
}

/// What was sent with a message: the context items, or an answer's system prompt.
#[component]
fn ContextView(message: ChatMessage) -> impl IntoView {
    let items = message.context.clone();
    view! {
        <div class="chat-context">
            {(!items.is_empty()).then(|| view! {
                <table class="chat-context-table">
                    <thead><tr><th>"Item"</th><th>"Why"</th><th>"Score"</th><th>"Tokens"</th><th>"Sent"</th></tr></thead>
                    <tbody>
                        {items.iter().map(|item| view! {
                            <tr>
                                <td>{format!("{} {}", context::kind_label(&item.kind), item.label)}</td>
                                <td>{item.reason.clone()}</td>
                                <td>{if item.score > 0 { format!("{}%", item.score / 10) } else { String::new() }}</td>
                                <td>{item.tokens}</td>
                                <td>{match (item.included, item.choice.as_deref()) {
                                    (true, Some("pinned")) => "yes (pinned)",
                                    (true, _) => "yes",
                                    (false, Some("dropped")) => "no (dropped)",
                                    (false, _) => "no",
                                }}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
            {items.into_iter().filter(|item| item.included).map(|item| view! {
                <details class="chat-context-item">
                    <summary>{item.label.clone()}</summary>
                    <pre><code>{item.content}</code></pre>
                </details>
            }).collect_view()}
            {message.system_prompt.map(|prompt| view! {
                <details class="chat-context-item" open>
                    <summary>"System prompt (with the context)"</summary>
                    <pre class="chat-prompt">{prompt}</pre>
                </details>
            })}
        </div>
    }
}
