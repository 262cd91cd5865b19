use leptos::ev::MouseEvent;
use leptos::prelude::*;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ButtonVariant {
    #[default]
    Primary,
    Secondary,
    Danger,
    Ghost,
}

impl ButtonVariant {
    fn class(self) -> &'static str {
        match self {
            ButtonVariant::Primary => "button button-primary",
            ButtonVariant::Secondary => "button button-secondary",
            ButtonVariant::Danger => "button button-danger",
            ButtonVariant::Ghost => "button button-ghost",
        }
    }
}

/// A button. `kind` is the HTML type (`button` unless told, so it never submits a form by accident).
#[component]
pub fn Button(
    #[prop(optional)] variant: ButtonVariant,
    #[prop(optional, into)] disabled: Signal<bool>,
    #[prop(optional, into)] id: Option<String>,
    #[prop(optional, into)] aria_label: Option<String>,
    #[prop(optional, into)] title: Option<String>,
    #[prop(default = "button")] kind: &'static str,
    #[prop(optional, into)] on_click: Option<Callback<MouseEvent>>,
    children: Children,
) -> impl IntoView {
    view! {
        <button
            type=kind
            id=id
            class=variant.class()
            aria-label=aria_label
            title=title
            disabled=move || disabled.get()
            on:click=move |event| {
                if let Some(on_click) = on_click {
                    on_click.run(event);
                }
            }
        >
            {children()}
        </button>
    }
}
