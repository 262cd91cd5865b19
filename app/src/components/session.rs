use leptos::prelude::*;

use crate::api::auth::{sign_out, who_am_i};
use crate::types::{CurrentUser, UserRole};

/// The signed-in person (or `None` for a visitor), loaded once per page on the server and
/// handed to the browser with the HTML.
#[derive(Clone, Copy)]
pub struct Session(pub Resource<Option<CurrentUser>>);

pub fn provide_session() {
    let resource = Resource::new(|| (), |()| async { who_am_i().await.ok().flatten() });
    provide_context(Session(resource));
}

/// The header's account area: "Sign in" / "Create account" for visitors, the name and "Sign
/// out" for a signed-in person.
#[component]
pub fn AccountMenu() -> impl IntoView {
    let Session(user) = expect_context::<Session>();
    let signing_out = RwSignal::new(false);
    let on_sign_out = move |_| {
        signing_out.set(true);
        leptos::task::spawn_local(async move {
            if let Err(error) = sign_out().await {
                leptos::logging::error!("sign-out failed: {error}");
            }
            if let Err(error) = window().location().set_href("/") {
                leptos::logging::error!("could not leave the page: {error:?}");
            }
        });
    };
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match user.await {
                    Some(person) => {
                        view! {
                            <span class="account-name" id="account-name">
                                {person.name.clone()}
                                {(person.role == UserRole::Admin)
                                    .then(|| view! { <span class="badge">"admin"</span> })}
                            </span>
                            <button
                                type="button"
                                id="sign-out"
                                class="button button-secondary"
                                disabled=move || signing_out.get()
                                on:click=on_sign_out
                            >
                                "Sign out"
                            </button>
                        }
                            .into_any()
                    }
                    None => {
                        view! {
                            <a href="/sign-in" id="sign-in-link">"Sign in"</a>
                            <a href="/sign-up" class="button button-primary">"Create account"</a>
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}
