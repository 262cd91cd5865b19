use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::AppLayout;

/// Shown for any path no route matches, with HTTP status 404.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    crate::mark_hydrated();
    view! {
        <Title text="Page not found · Async Coder"/>
        <AppLayout>
            <div class="message-page">
                <p class="message-code">"404"</p>
                <h1>"This page does not exist"</h1>
                <p>"The address may be mistyped, or the page may have moved."</p>
                <p>
                    <a class="button button-primary" href="/">"Go to the home page"</a>
                </p>
            </div>
        </AppLayout>
    }
}
