use leptos::prelude::*;

/// A labelled native select: the browser gives it full keyboard support (arrows, type-ahead,
/// Enter/Space, Escape) and screen-reader semantics.
#[component]
pub fn Select(
    #[prop(into)] id: String,
    #[prop(into)] label: String,
    /// `(value, label)` pairs, in order.
    options: Vec<(String, String)>,
    #[prop(into)] value: Signal<String>,
    on_change: Callback<String>,
    #[prop(optional, into)] hint: Option<String>,
) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    view! {
        <div class="field">
            <label class="field-label" for=id.clone()>{label}</label>
            <select
                id=id
                class="select"
                aria-describedby=hint.as_ref().map(|_| hint_id.clone())
                prop:value=move || value.get()
                on:change=move |event| on_change.run(event_target_value(&event))
            >
                {options
                    .into_iter()
                    .map(|(option_value, option_label)| {
                        let selected_value = option_value.clone();
                        view! {
                            <option
                                value=option_value
                                selected=move || value.with(|current| *current == selected_value)
                            >
                                {option_label}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            {hint.map(|hint| view! { <p class="field-hint" id=hint_id>{hint}</p> })}
        </div>
    }
}
