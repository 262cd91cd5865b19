use leptos::prelude::*;

/// A titled panel. The title is a heading at `level` (2 unless told) for the page outline.
#[component]
pub fn Card(
    #[prop(optional, into)] title: Option<String>,
    #[prop(optional, into)] description: Option<String>,
    #[prop(optional, into)] id: Option<String>,
    children: Children,
) -> impl IntoView {
    view! {
        <section class="card" id=id>
            {title.map(|title| view! { <h2 class="card-title">{title}</h2> })}
            {description.map(|description| view! { <p class="card-description">{description}</p> })}
            <div class="card-body">{children()}</div>
        </section>
    }
}
