//! The person's own modes: listed, created, edited and deleted (built-in modes are shown and
//! cannot be changed).

use leptos::prelude::*;

use super::ChatState;
use crate::api::chat::{delete_mode, save_mode};
use crate::components::{Button, ButtonVariant, Modal, ToastKind, use_toaster};
use crate::types::{ChatMode, ModeDraft};

fn draft_of(mode: &ChatMode) -> ModeDraft {
    ModeDraft {
        name: mode.name.clone(),
        label: mode.label.clone(),
        description: mode.description.clone(),
        system_prompt: mode.system_prompt.clone(),
        models: mode.models.join(", "),
        send_current_file: mode.send_current_file,
        send_selection: mode.send_selection,
        max_context_tokens: mode.max_context_tokens,
        output: mode.output.clone(),
    }
}

fn empty_draft() -> ModeDraft {
    ModeDraft {
        send_current_file: true,
        send_selection: true,
        max_context_tokens: 8000,
        output: "markdown".into(),
        ..ModeDraft::default()
    }
}

#[component]
pub fn ModesDialog(open: RwSignal<bool>) -> impl IntoView {
    let state = expect_context::<ChatState>();
    let toaster = use_toaster();
    let editing = RwSignal::new(None::<Option<String>>);
    let draft = RwSignal::new(empty_draft());
    let error = RwSignal::new(None::<String>);
    let modes = move || {
        state
            .setup
            .with(|setup| setup.as_ref().map(|setup| setup.modes.clone()))
            .unwrap_or_default()
    };
    let save = move |_| {
        let Some(id) = editing.get_untracked() else {
            return;
        };
        let fields = draft.get_untracked();
        leptos::task::spawn_local(async move {
            match save_mode(id.clone(), fields).await {
                Ok(saved) => {
                    state.setup.update(|setup| {
                        if let Some(setup) = setup {
                            match setup
                                .modes
                                .iter_mut()
                                .find(|mode| mode.id.is_some() && mode.id == saved.id)
                            {
                                Some(existing) => *existing = saved.clone(),
                                None => setup.modes.push(saved.clone()),
                            }
                        }
                    });
                    toaster.show(
                        ToastKind::Success,
                        format!("Mode \"{}\" saved.", saved.label),
                    );
                    editing.set(None);
                    error.set(None);
                }
                Err(refusal) => error.set(Some(refusal.to_string())),
            }
        });
    };
    let remove = move |id: String| {
        leptos::task::spawn_local(async move {
            match delete_mode(id.clone()).await {
                Ok(()) => state.setup.update(|setup| {
                    if let Some(setup) = setup {
                        setup
                            .modes
                            .retain(|mode| mode.id.as_deref() != Some(id.as_str()));
                    }
                }),
                Err(refusal) => error.set(Some(refusal.to_string())),
            }
        });
    };
    let field = move |label: &'static str,
                      id: &'static str,
                      get: fn(&ModeDraft) -> String,
                      set: fn(&mut ModeDraft, String)| {
        view! {
            <label class="field">
                <span class="field-label">{label}</span>
                <input
                    class="input"
                    id=id
                    prop:value=move || draft.with(get)
                    on:input=move |event| {
                        let value = event_target_value(&event);
                        draft.update(|draft| set(draft, value));
                    }
                />
            </label>
        }
    };
    view! {
        <Modal id="modes-dialog" title="Modes" open>
            <ul class="modes-list">
                {move || modes().into_iter().map(|mode| {
                    let own = mode.id.clone();
                    let edit_mode = mode.clone();
                    view! {
                        <li>
                            <strong>{mode.label.clone()}</strong>
                            <span class="modes-meta">
                                {format!(" {} · {}{}", mode.name, mode.output, if mode.available { "" } else { " · coming" })}
                            </span>
                            <p class="modes-description">{mode.description.clone()}</p>
                            {own.map(|id| {
                                let remove_id = id.clone();
                                view! {
                                    <button type="button" class="chat-action" on:click=move |_| {
                                        draft.set(draft_of(&edit_mode));
                                        editing.set(Some(Some(id.clone())));
                                    }>"Edit"</button>
                                    <button type="button" class="chat-action" on:click=move |_| remove(remove_id.clone())>"Delete"</button>
                                }
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <Show
                when=move || editing.get().is_some()
                fallback=move || view! {
                    <Button id="mode-new" variant=ButtonVariant::Secondary on_click=Callback::new(move |_| {
                        draft.set(empty_draft());
                        editing.set(Some(None));
                    })>"New mode"</Button>
                }
            >
                <div class="mode-form">
                    {field("Name (letters, digits, dashes)", "mode-name", |draft| draft.name.clone(), |draft, value| draft.name = value)}
                    {field("Label", "mode-label", |draft| draft.label.clone(), |draft, value| draft.label = value)}
                    {field("Description", "mode-description", |draft| draft.description.clone(), |draft, value| draft.description = value)}
                    <label class="field">
                        <span class="field-label">"System prompt"</span>
                        <textarea
                            id="mode-prompt"
                            rows="5"
                            prop:value=move || draft.with(|draft| draft.system_prompt.clone())
                            on:input=move |event| {
                                let value = event_target_value(&event);
                                draft.update(|draft| draft.system_prompt = value);
                            }
                        ></textarea>
                    </label>
                    {field("Suggested models, in order (the fallback list)", "mode-models", |draft| draft.models.clone(), |draft, value| draft.models = value)}
                    <label class="field">
                        <span class="field-label">"Output"</span>
                        <select
                            id="mode-output"
                            prop:value=move || draft.with(|draft| draft.output.clone())
                            on:change=move |event| {
                                let value = event_target_value(&event);
                                draft.update(|draft| draft.output = value);
                            }
                        >
                            <option value="markdown">"Markdown"</option>
                            <option value="plan">"Plan"</option>
                            <option value="review">"Review"</option>
                        </select>
                    </label>
                    <label class="checkbox">
                        <input type="checkbox" prop:checked=move || draft.with(|draft| draft.send_current_file) on:change=move |event| {
                            let checked = event_target_checked(&event);
                            draft.update(|draft| draft.send_current_file = checked);
                        }/>
                        "Send the current file"
                    </label>
                    <label class="checkbox">
                        <input type="checkbox" prop:checked=move || draft.with(|draft| draft.send_selection) on:change=move |event| {
                            let checked = event_target_checked(&event);
                            draft.update(|draft| draft.send_selection = checked);
                        }/>
                        "Send the selection"
                    </label>
                    <label class="field">
                        <span class="field-label">"Context budget (tokens)"</span>
                        <input
                            class="input"
                            type="number"
                            min="0"
                            id="mode-budget"
                            prop:value=move || draft.with(|draft| draft.max_context_tokens.to_string())
                            on:input=move |event| {
                                let value = event_target_value(&event).parse().unwrap_or(0);
                                draft.update(|draft| draft.max_context_tokens = value);
                            }
                        />
                    </label>
                    {move || error.get().map(|error| view! { <p class="field-error" role="alert">{error}</p> })}
                    <div class="dialog-actions">
                        <Button variant=ButtonVariant::Secondary on_click=Callback::new(move |_| editing.set(None))>"Cancel"</Button>
                        <Button id="mode-save" on_click=Callback::new(save)>"Save mode"</Button>
                    </div>
                </div>
            </Show>
        </Modal>
    }
}
