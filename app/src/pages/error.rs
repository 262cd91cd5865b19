use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::AppLayout;
use crate::error::AppError;

/// What an error boundary shows. Only [`AppError`]'s own text (written for people) is displayed;
/// any other error is shown as a generic failure, never with its internal text.
#[component]
pub fn ErrorPage(errors: ArcRwSignal<Errors>) -> impl IntoView {
    let app_errors = move || {
        errors
            .get()
            .into_iter()
            .map(|(_, error)| {
                error
                    .downcast_ref::<AppError>()
                    .cloned()
                    .unwrap_or(AppError::Internal {
                        reference: "none".into(),
                    })
            })
            .collect::<Vec<_>>()
    };

    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        let status = app_errors()
            .first()
            .map(AppError::status)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        response.set_status(status);
    }
    crate::mark_hydrated();

    view! {
        <Title text="Something went wrong · Async Coder"/>
        <AppLayout>
            <div class="message-page" role="alert">
                <h1>"Something went wrong"</h1>
                <ul class="error-list">
                    {move || {
                        app_errors()
                            .into_iter()
                            .map(|error| view! { <li>{error.to_string()}</li> })
                            .collect_view()
                    }}
                </ul>
                <p>
                    <a class="button button-primary" href="/">"Go to the home page"</a>
                </p>
            </div>
        </AppLayout>
    }
}
