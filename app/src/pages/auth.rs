use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::auth::{sign_in, sign_up};
use crate::components::{AppLayout, Button, Card, Input};
use crate::error::AppError;
use crate::types::CurrentUser;

/// Where to go after signing in: the page that asked for it (`?next=/projects/…`, a path of this
/// site only), else the dashboard.
fn destination_after_sign_in() -> String {
    let search = window().location().search().unwrap_or_default();
    let next = search
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "next")
        .and_then(|(_, value)| percent_decode(value));
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path
        }
        _ => "/projects".to_owned(),
    }
}

/// `%XX` escapes decoded; `None` when they do not make UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = text.get(index + 1..index + 3)?;
                decoded.push(u8::from_str_radix(hex, 16).ok()?);
                index += 3;
            }
            byte => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// Sends a sign-in or sign-up request. On success a full load of the page that asked for the
/// sign-in (or the dashboard) renders every part of it for the signed-in person; a refusal is
/// shown in `error`.
fn send_and_go_home(
    request: impl Future<Output = Result<CurrentUser, AppError>> + 'static,
    pending: RwSignal<bool>,
    error: RwSignal<Option<String>>,
) {
    pending.set(true);
    error.set(None);
    leptos::task::spawn_local(async move {
        match request.await {
            Ok(_) => {
                if let Err(failure) = window().location().set_href(&destination_after_sign_in()) {
                    leptos::logging::error!("could not leave the page: {failure:?}");
                }
            }
            Err(refusal) => {
                error.set(Some(refusal.to_string()));
                pending.set(false);
            }
        }
    });
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    let submit = move || {
        send_and_go_home(
            sign_in(email.get_untracked(), password.get_untracked()),
            pending,
            error,
        )
    };
    view! {
        <Title text="Sign in · Async Coder"/>
        <AppLayout>
            <div class="page narrow">
                <h1>"Sign in"</h1>
                <Card>
                    <form
                        novalidate
                        on:submit=move |event| {
                            event.prevent_default();
                            submit();
                        }
                    >
                        <Input id="sign-in-email" label="Email" kind="email" value=email autocomplete="email"/>
                        <Input
                            id="sign-in-password"
                            label="Password"
                            kind="password"
                            value=password
                            autocomplete="current-password"
                        />
                        <p class="form-error" role="alert" hidden=move || error.with(Option::is_none)>
                            {move || error.get().unwrap_or_default()}
                        </p>
                        <Button kind="submit" id="sign-in-submit" disabled=pending>"Sign in"</Button>
                    </form>
                </Card>
                <p>"New here? " <a href="/sign-up">"Create an account"</a></p>
            </div>
        </AppLayout>
    }
}

#[component]
pub fn SignUpPage() -> impl IntoView {
    let name = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    let submit = move || {
        let request = sign_up(
            email.get_untracked(),
            name.get_untracked(),
            password.get_untracked(),
        );
        send_and_go_home(request, pending, error)
    };
    view! {
        <Title text="Create an account · Async Coder"/>
        <AppLayout>
            <div class="page narrow">
                <h1>"Create an account"</h1>
                <Card>
                    <form
                        novalidate
                        on:submit=move |event| {
                            event.prevent_default();
                            submit();
                        }
                    >
                        <Input id="sign-up-name" label="Name" value=name autocomplete="name"/>
                        <Input id="sign-up-email" label="Email" kind="email" value=email autocomplete="email"/>
                        <Input
                            id="sign-up-password"
                            label="Password"
                            kind="password"
                            value=password
                            autocomplete="new-password"
                            hint="8 to 128 characters; common passwords are refused."
                        />
                        <p class="form-error" role="alert" hidden=move || error.with(Option::is_none)>
                            {move || error.get().unwrap_or_default()}
                        </p>
                        <Button kind="submit" id="sign-up-submit" disabled=pending>"Create account"</Button>
                    </form>
                </Card>
                <p>"Have an account? " <a href="/sign-in">"Sign in"</a></p>
            </div>
        </AppLayout>
    }
}
