use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::account::{change_password, delete_account, load_profile, update_profile};
use crate::api::tokens::{create_access_token, list_access_tokens, revoke_access_token};
use crate::components::{
    AppLayout, Button, ButtonVariant, Card, Input, LocalTime, Modal, ToastKind, use_toaster,
};
use crate::error::AppError;

/// The signed-in person's account: profile, password, access tokens, deletion. The data loads in
/// the browser once the page is live (nothing of it is rendered on the server).
#[component]
pub fn AccountPage() -> impl IntoView {
    let profile = RwSignal::new(None::<Result<crate::types::Profile, AppError>>);
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            profile.set(Some(load_profile().await));
        });
    });
    view! {
        <Title text="Account · Async Coder"/>
        <AppLayout>
            <div class="page">
                <h1>"Account"</h1>
                {move || match profile.get() {
                    None => view! { <p>"Loading…"</p> }.into_any(),
                    Some(Ok(profile)) => {
                        view! {
                            <AccountForms profile/>
                            <AccessTokens/>
                        }
                            .into_any()
                    }
                    Some(Err(AppError::Unauthorized)) => {
                        view! {
                            <p>
                                "Sign in to see your account. "
                                <a href="/sign-in?next=/account">"Sign in"</a>
                            </p>
                        }
                            .into_any()
                    }
                    Some(Err(error)) => view! { <p role="alert">{error.to_string()}</p> }.into_any(),
                }}
            </div>
        </AppLayout>
    }
}

#[component]
fn AccountForms(profile: crate::types::Profile) -> impl IntoView {
    let toaster = use_toaster();
    let name = RwSignal::new(profile.name.clone());
    let avatar_url = RwSignal::new(profile.avatar_url.clone().unwrap_or_default());
    let profile_error = RwSignal::new(None::<String>);
    let save_profile = move || {
        let request = update_profile(name.get_untracked(), avatar_url.get_untracked());
        leptos::task::spawn_local(async move {
            match request.await {
                Ok(()) => {
                    profile_error.set(None);
                    toaster.show(ToastKind::Success, "Profile saved.");
                }
                Err(error) => profile_error.set(Some(error.to_string())),
            }
        });
    };

    let current_password = RwSignal::new(String::new());
    let new_password = RwSignal::new(String::new());
    let password_error = RwSignal::new(None::<String>);
    let save_password = move || {
        let request = change_password(
            current_password.get_untracked(),
            new_password.get_untracked(),
        );
        leptos::task::spawn_local(async move {
            match request.await {
                Ok(()) => {
                    password_error.set(None);
                    current_password.set(String::new());
                    new_password.set(String::new());
                    toaster.show(
                        ToastKind::Success,
                        "Password changed. Every other session has been signed out.",
                    );
                }
                Err(error) => password_error.set(Some(error.to_string())),
            }
        });
    };

    let confirm_delete = RwSignal::new(false);
    let delete_password = RwSignal::new(String::new());
    let delete_error = RwSignal::new(None::<String>);
    let do_delete = move || {
        let request = delete_account(delete_password.get_untracked());
        leptos::task::spawn_local(async move {
            match request.await {
                Ok(()) => {
                    if let Err(error) = window().location().set_href("/") {
                        leptos::logging::error!("could not leave the page: {error:?}");
                    }
                }
                Err(error) => delete_error.set(Some(error.to_string())),
            }
        });
    };

    view! {
        <Card title="Profile" description=format!("Signed in as {}.", profile.email)>
            <form
                novalidate
                on:submit=move |event| {
                    event.prevent_default();
                    save_profile();
                }
            >
                <Input id="profile-name" label="Name" value=name autocomplete="name"/>
                <Input
                    id="profile-avatar"
                    label="Avatar URL"
                    value=avatar_url
                    kind="url"
                    hint="An https:// address of a picture, or empty."
                />
                <p class="form-error" role="alert" hidden=move || profile_error.with(Option::is_none)>
                    {move || profile_error.get().unwrap_or_default()}
                </p>
                <Button kind="submit" id="save-profile">"Save profile"</Button>
            </form>
        </Card>
        <Card title="Password" description="Changing it signs out every other session and revokes your access tokens.">
            <form
                novalidate
                on:submit=move |event| {
                    event.prevent_default();
                    save_password();
                }
            >
                <Input
                    id="current-password"
                    label="Current password"
                    kind="password"
                    value=current_password
                    autocomplete="current-password"
                />
                <Input
                    id="new-password"
                    label="New password"
                    kind="password"
                    value=new_password
                    autocomplete="new-password"
                    hint="8 to 128 characters; common passwords are refused."
                />
                <p class="form-error" role="alert" hidden=move || password_error.with(Option::is_none)>
                    {move || password_error.get().unwrap_or_default()}
                </p>
                <Button kind="submit" id="change-password">"Change password"</Button>
            </form>
        </Card>
        <Card title="Delete account" description="Removes your projects, conversations, keys and sessions. This cannot be undone.">
            <Button
                variant=ButtonVariant::Danger
                id="delete-account"
                on_click=Callback::new(move |_| confirm_delete.set(true))
            >
                "Delete account…"
            </Button>
        </Card>
        <Modal id="confirm-delete" title="Delete your account?" open=confirm_delete>
            <form
                novalidate
                on:submit=move |event| {
                    event.prevent_default();
                    do_delete();
                }
            >
                <p>"Everything you own here is deleted. Enter your password to confirm."</p>
                <Input
                    id="delete-password"
                    label="Password"
                    kind="password"
                    value=delete_password
                    autocomplete="current-password"
                    error=delete_error
                />
                <div class="modal-actions">
                    <Button
                        variant=ButtonVariant::Secondary
                        on_click=Callback::new(move |_| confirm_delete.set(false))
                    >
                        "Cancel"
                    </Button>
                    <Button kind="submit" variant=ButtonVariant::Danger id="confirm-delete-button">
                        "Delete for good"
                    </Button>
                </div>
            </form>
        </Modal>
    }
}

/// Personal access tokens: create (the secret is shown once), list, revoke.
#[component]
fn AccessTokens() -> impl IntoView {
    let toaster = use_toaster();
    let tokens = RwSignal::new(Vec::<crate::types::AccessToken>::new());
    let reload = move || {
        leptos::task::spawn_local(async move {
            match list_access_tokens().await {
                Ok(list) => tokens.set(list),
                Err(refusal) => toaster.show(
                    ToastKind::Error,
                    format!("The tokens could not be loaded. {refusal}"),
                ),
            }
        });
    };
    reload();
    let name = RwSignal::new(String::new());
    let days = RwSignal::new("30".to_owned());
    let scope_ai = RwSignal::new(true);
    let scope_read = RwSignal::new(true);
    let scope_write = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let created_secret = RwSignal::new(None::<String>);
    let create = move || {
        let scopes = [
            (scope_ai.get_untracked(), "ai"),
            (scope_read.get_untracked(), "read"),
            (scope_write.get_untracked(), "write"),
        ]
        .into_iter()
        .filter_map(|(granted, name)| granted.then_some(name))
        .collect::<Vec<_>>()
        .join(" ");
        let request = create_access_token(name.get_untracked(), days.get_untracked(), scopes);
        leptos::task::spawn_local(async move {
            match request.await {
                Ok(created) => {
                    error.set(None);
                    name.set(String::new());
                    created_secret.set(Some(created.secret));
                    reload();
                }
                Err(refusal) => error.set(Some(refusal.to_string())),
            }
        });
    };
    let revoke = move |id: String| {
        leptos::task::spawn_local(async move {
            match revoke_access_token(id).await {
                Ok(()) => {
                    toaster.show(ToastKind::Success, "Token revoked.");
                    reload();
                }
                Err(refusal) => {
                    toaster.show(ToastKind::Error, format!("Nothing was revoked. {refusal}"))
                }
            }
        });
    };
    view! {
        <Card
            title="Access tokens"
            description="For scripts and tools using the HTTP API with Authorization: Bearer. A token may do only what its scopes allow, never manage your account, keys or tokens, and a password change revokes every token."
        >
            {move || {
                created_secret
                    .get()
                    .map(|secret| {
                        view! {
                            <div class="token-secret" role="status">
                                <p>"Copy this token now: it will not be shown again."</p>
                                <code id="new-token-secret">{secret}</code>
                            </div>
                        }
                    })
            }}
            <ul class="credential-list" id="access-tokens">
                <For each=move || tokens.get() key=|token| (token.id.clone(), token.revoked) let:token>
                    {
                        let id = token.id.clone();
                        let state = if token.revoked {
                            view! { "revoked" }.into_any()
                        } else {
                            view! { "expires " <LocalTime at=token.expires_at.clone()/> }.into_any()
                        };
                        let used = match token.last_used_at.clone() {
                            Some(at) => view! { "last used " <LocalTime at/> }.into_any(),
                            None => view! { "never used" }.into_any(),
                        };
                        view! {
                            <li class="credential">
                                <div>
                                    <strong>{token.name.clone()}</strong>
                                    <div class="credential-detail">
                                        "created " <LocalTime at=token.created_at.clone()/> " · " {state} " · " {used}
                                        " · may: " {token.scopes.join(", ")}
                                    </div>
                                </div>
                                {(!token.revoked)
                                    .then(|| {
                                        view! {
                                            <Button
                                                variant=ButtonVariant::Secondary
                                                aria_label=format!("Revoke {}", token.name)
                                                on_click=Callback::new(move |_| revoke(id.clone()))
                                            >
                                                "Revoke"
                                            </Button>
                                        }
                                    })}
                            </li>
                        }
                    }
                </For>
            </ul>
            <form
                class="inline-form"
                novalidate
                on:submit=move |event| {
                    event.prevent_default();
                    create();
                }
            >
                <Input id="token-name" label="Token name" value=name/>
                <Input id="token-days" label="Lifetime (days)" value=days input_mode="numeric" error=error/>
                <fieldset class="token-scopes">
                    <legend>"May"</legend>
                    <label>
                        <input type="checkbox" id="token-scope-ai" prop:checked=scope_ai on:change=move |event| scope_ai.set(event_target_checked(&event))/>
                        " call AI models"
                    </label>
                    <label>
                        <input type="checkbox" id="token-scope-read" prop:checked=scope_read on:change=move |event| scope_read.set(event_target_checked(&event))/>
                        " read projects and chats"
                    </label>
                    <label>
                        <input type="checkbox" id="token-scope-write" prop:checked=scope_write on:change=move |event| scope_write.set(event_target_checked(&event))/>
                        " change projects and chats"
                    </label>
                </fieldset>
                <Button kind="submit" id="create-token">"Create token"</Button>
            </form>
        </Card>
    }
}
