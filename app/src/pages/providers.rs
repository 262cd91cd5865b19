use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::ai::{list_models, load_usage};
use crate::api::providers::{
    list_credentials, remove_credential, save_credential, test_credential,
};
use crate::components::{
    AppLayout, Button, ButtonVariant, Card, Input, LocalTime, Select, ToastKind, use_toaster,
};
use crate::error::AppError;
use crate::types::ProviderChoice;

/// Settings → AI providers: the person's keys and local servers.
#[component]
pub fn ProvidersPage() -> impl IntoView {
    let toaster = use_toaster();
    let credentials = Resource::new(|| (), |()| list_credentials());
    let models = Resource::new(|| (), |()| list_models());
    let usage = Resource::new(|| (), |()| load_usage());

    let provider = RwSignal::new(ProviderChoice::OpenAi.as_str().to_owned());
    let label = RwSignal::new(String::new());
    let api_key = RwSignal::new(String::new());
    let base_url = RwSignal::new(String::new());
    let form_error = RwSignal::new(None::<String>);
    let is_local = move || provider.get() == ProviderChoice::OpenAiCompatible.as_str();

    let save = move || {
        let request = save_credential(
            provider.get_untracked(),
            label.get_untracked(),
            api_key.get_untracked(),
            base_url.get_untracked(),
        );
        leptos::task::spawn_local(async move {
            match request.await {
                Ok(saved) => {
                    form_error.set(None);
                    api_key.set(String::new());
                    toaster.show(
                        ToastKind::Success,
                        format!("{} credential saved.", saved.provider.label()),
                    );
                    credentials.refetch();
                    models.refetch();
                }
                Err(error) => form_error.set(Some(error.to_string())),
            }
        });
    };
    let remove = move |id: String| {
        leptos::task::spawn_local(async move {
            match remove_credential(id).await {
                Ok(()) => {
                    toaster.show(ToastKind::Success, "Credential removed.");
                    credentials.refetch();
                }
                Err(error) => {
                    toaster.show(ToastKind::Error, format!("Nothing was removed. {error}"))
                }
            }
        });
    };

    // Known in the browser only: filled in after hydration.
    let origin = RwSignal::new(String::new());
    Effect::new(move |_| origin.set(page_origin()));
    let testing = RwSignal::new(None::<String>);
    let test = move |id: String| {
        testing.set(Some(id.clone()));
        leptos::task::spawn_local(async move {
            match test_credential(id).await {
                Ok(result) if result.ok => toaster.show(ToastKind::Success, result.message),
                Ok(result) => toaster.show(ToastKind::Error, result.message),
                Err(error) => {
                    toaster.show(ToastKind::Error, format!("The test did not run. {error}"))
                }
            }
            testing.set(None);
            credentials.refetch();
            models.refetch();
        });
    };

    let options = ProviderChoice::ALL
        .iter()
        .map(|choice| (choice.as_str().to_owned(), choice.label().to_owned()))
        .collect::<Vec<_>>();

    view! {
        <Title text="AI providers · Async Coder"/>
        <AppLayout>
            <div class="page">
                <h1>"AI providers"</h1>
                <Card title="Your credentials" description="Keys are encrypted on the server and never shown again; only their last four characters are.">
                    <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            match credentials.await {
                                Ok(list) if list.is_empty() => {
                                    view! {
                                        <p id="no-providers">
                                            "No provider is configured yet. Add a key below to use AI features."
                                        </p>
                                    }
                                        .into_any()
                                }
                                Ok(list) => {
                                    view! {
                                        <ul class="credential-list">
                                            {list
                                                .into_iter()
                                                .map(|credential| {
                                                    let id = credential.id.clone();
                                                    let test_id = credential.id.clone();
                                                    let busy_id = credential.id.clone();
                                                    let detail = match (&credential.key_last_four, &credential.base_url) {
                                                        (Some(end), Some(url)) => format!("{url} · key …{end}"),
                                                        (Some(end), None) => format!("key …{end}"),
                                                        (None, Some(url)) => url.clone(),
                                                        (None, None) => String::new(),
                                                    };
                                                    view! {
                                                        <li class="credential">
                                                            <div>
                                                                <strong>{credential.provider.label()}</strong>
                                                                " · " {credential.label.clone()}
                                                                <div class="credential-detail">{detail} " · " {credential.status.clone()}</div>
                                                            </div>
                                                            <div class="credential-actions">
                                                            <Button
                                                                variant=ButtonVariant::Secondary
                                                                aria_label=format!("Test {} {}", credential.provider.label(), credential.label)
                                                                disabled=Signal::derive(move || testing.get().as_deref() == Some(busy_id.as_str()))
                                                                on_click=Callback::new(move |_| test(test_id.clone()))
                                                            >
                                                                "Test"
                                                            </Button>
                                                            <Button
                                                                variant=ButtonVariant::Secondary
                                                                aria_label=format!("Remove {} {}", credential.provider.label(), credential.label)
                                                                on_click=Callback::new(move |_| remove(id.clone()))
                                                            >
                                                                "Remove"
                                                            </Button>
                                                            </div>
                                                        </li>
                                                    }
                                                })
                                                .collect_view()}
                                        </ul>
                                    }
                                        .into_any()
                                }
                                Err(AppError::Unauthorized) => {
                                    view! {
                                        <p>
                                            "Sign in to manage your providers. "
                                            <a href="/sign-in?next=/settings/providers">"Sign in"</a>
                                        </p>
                                    }
                                        .into_any()
                                }
                                Err(error) => view! { <p role="alert">{error.to_string()}</p> }.into_any(),
                            }
                        })}
                    </Suspense>
                </Card>
                <Card title="Add or replace a credential" description="Saving under an existing provider and label replaces that key.">
                    <form
                        novalidate
                        on:submit=move |event| {
                            event.prevent_default();
                            save();
                        }
                    >
                        <Select
                            id="provider"
                            label="Provider"
                            options=options
                            value=provider
                            on_change=Callback::new(move |value| provider.set(value))
                        />
                        <Input id="credential-label" label="Label" value=label hint="Optional, to tell several keys apart (default: default)."/>
                        <div hidden=move || !is_local()>
                            <Input id="base-url" label="Server address" value=base_url kind="url" placeholder="http://127.0.0.1:11434/v1"/>
                        </div>
                        <Input
                            id="api-key"
                            label="API key"
                            kind="password"
                            value=api_key
                            autocomplete="off"
                            hint="Optional for a local server."
                        />
                        <p class="form-error" role="alert" hidden=move || form_error.with(Option::is_none)>
                            {move || form_error.get().unwrap_or_default()}
                        </p>
                        <Button kind="submit" id="save-credential">"Save"</Button>
                    </form>
                </Card>
                <Card title="Models you can use" description="What your providers offer your keys, with context window and price in US dollars per million input / output tokens.">
                    <Suspense fallback=|| view! { <p>"Asking your providers…"</p> }>
                        {move || Suspend::new(async move {
                            match models.await {
                                Ok(list) if list.models.is_empty() && list.problems.is_empty() => {
                                    view! { <p id="no-models">"No provider is configured, so no model can be used yet."</p> }.into_any()
                                }
                                Ok(list) => view! {
                                    {list.problems.into_iter().map(|problem| view! { <p class="form-error" role="alert">{problem}</p> }).collect_view()}
                                    <table class="table" id="model-list">
                                        <thead><tr><th>"Model"</th><th>"Provider"</th><th>"Context"</th><th>"Price"</th><th>"Tools"</th></tr></thead>
                                        <tbody>
                                            {list.models.clone().into_iter().map(|model| {
                                                let context = model.context_window.map(|tokens| format!("{}k", tokens / 1000)).unwrap_or_else(|| "?".into());
                                                let price = match (model.input_price, model.output_price) {
                                                    (Some(input), Some(output)) => format!("{input} / {output}"),
                                                    _ => "unknown".into(),
                                                };
                                                view! {
                                                    <tr>
                                                        <td><code>{model.route}</code></td>
                                                        <td>{crate::types::provider_display_name(&model.provider)} " · " {model.credential_label}</td>
                                                        <td>{context}</td>
                                                        <td>{price}</td>
                                                        <td>{if model.tools { "yes" } else { "no" }}</td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                    <DefaultModel models=list.models.clone()/>
                                }.into_any(),
                                Err(error) => view! { <p role="alert">{error.to_string()}</p> }.into_any(),
                            }
                        })}
                    </Suspense>
                </Card>
                <Card title="Usage" description="Every AI call is recorded with the tokens the provider reported and its cost.">
                    <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            match usage.await {
                                Ok(summary) => {
                                    let no_calls = summary.recent.is_empty();
                                    view! {
                                    <p id="usage-totals">
                                        "Today: " {summary.requests_today} " calls, " {summary.tokens_today} " tokens, " {summary.cost_today.clone()}
                                        " · This month: " {summary.requests_this_month} " calls, " {summary.tokens_this_month} " tokens, " {summary.cost_this_month.clone()}
                                    </p>
                                    <table class="table" hidden=no_calls>
                                        <thead><tr><th>"When"</th><th>"Model"</th><th>"Mode"</th><th>"Tokens in / out"</th><th>"Cost"</th><th>"Outcome"</th></tr></thead>
                                        <tbody>
                                            {summary.recent.into_iter().map(|row| view! {
                                                <tr>
                                                    <td><LocalTime at=row.at/></td>
                                                    <td>{crate::types::provider_display_name(&row.provider)} " · " {row.model}</td>
                                                    <td>{row.mode}</td>
                                                    <td>{row.input_tokens} " / " {row.output_tokens}</td>
                                                    <td>{row.cost}</td>
                                                    <td>{row.outcome}</td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                }.into_any()
                                }
                                Err(error) => view! { <p role="alert">{error.to_string()}</p> }.into_any(),
                            }
                        })}
                    </Suspense>
                </Card>
                <Card title="Use your providers from other tools" description="Async Coder speaks OpenAI's chat completions API, with your keys and your usage records.">
                    <p>
                        "Base URL: " <code id="openai-base-url">{move || format!("{}/v1", origin.get())}</code>
                        " · key: a personal access token from "
                        <a href="/account">"Account → Access tokens"</a>
                        ". Model names: " <code>"gpt-4o"</code> ", " <code>"claude-sonnet-4-5"</code> ", "
                        <code>"gemini-2.5-flash"</code> ", or " <code>"<label>/<model>"</code> " for a local server."
                    </p>
                </Card>
            </div>
        </AppLayout>
    }
}

/// The page's origin in the browser (empty while rendering on the server).
fn page_origin() -> String {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|window| window.location().origin().ok())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        String::new()
    }
}

/// The model new chat conversations use when none is chosen.
#[component]
fn DefaultModel(models: Vec<crate::types::AiModel>) -> impl IntoView {
    let toaster = use_toaster();
    let current = RwSignal::new(String::new());
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            match crate::api::chat::load_chat_setup().await {
                Ok(setup) => current.set(setup.default_model.unwrap_or_default()),
                Err(error) => toaster.show(ToastKind::Error, error.to_string()),
            }
        });
    });
    let mut options = vec![(
        String::new(),
        "None: the mode's models, else the first".to_owned(),
    )];
    options.extend(
        models
            .into_iter()
            .map(|model| (model.route.clone(), model.route)),
    );
    let choose = Callback::new(move |model: String| {
        current.set(model.clone());
        leptos::task::spawn_local(async move {
            match crate::api::chat::set_default_model(model).await {
                Ok(Some(model)) => toaster.show(
                    ToastKind::Success,
                    format!("New conversations use {model}."),
                ),
                Ok(None) => toaster.show(
                    ToastKind::Success,
                    "New conversations use the mode's models.",
                ),
                Err(error) => toaster.show(ToastKind::Error, error.to_string()),
            }
        });
    });
    view! {
        <crate::components::Select
            id="default-model"
            label="Default model for new chat conversations"
            options
            value=current
            on_change=choose
        />
    }
}
