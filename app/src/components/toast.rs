use std::time::Duration;

use leptos::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToastKind {
    Success,
    Error,
    Info,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Toast {
    id: u64,
    kind: ToastKind,
    text: String,
    /// A link to where the notification leads: (href, text).
    link: Option<(String, String)>,
}

/// Shows short notifications. Success and info toasts leave after a few seconds; errors stay until
/// dismissed, so a person has time to read them.
#[derive(Clone, Copy)]
pub struct Toaster {
    toasts: RwSignal<Vec<Toast>>,
    next_id: StoredValue<u64>,
}

const TOAST_LIFETIME: Duration = Duration::from_secs(6);

impl Toaster {
    pub fn show(&self, kind: ToastKind, text: impl Into<String>) {
        self.push(kind, text.into(), None);
    }

    /// A notification with a link (`href`, `link_text`) to what it is about.
    pub fn show_with_link(
        &self,
        kind: ToastKind,
        text: impl Into<String>,
        href: impl Into<String>,
        link_text: impl Into<String>,
    ) {
        self.push(kind, text.into(), Some((href.into(), link_text.into())));
    }

    fn push(&self, kind: ToastKind, text: String, link: Option<(String, String)>) {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        self.toasts.update(|toasts| {
            toasts.push(Toast {
                id,
                kind,
                text,
                link,
            })
        });
        if kind != ToastKind::Error {
            let toaster = *self;
            set_timeout(move || toaster.dismiss(id), TOAST_LIFETIME);
        }
    }

    pub fn dismiss(&self, id: u64) {
        self.toasts
            .update(|toasts| toasts.retain(|toast| toast.id != id));
    }
}

pub fn provide_toaster() -> Toaster {
    let toaster = Toaster {
        toasts: RwSignal::new(Vec::new()),
        next_id: StoredValue::new(0),
    };
    provide_context(toaster);
    toaster
}

/// The toaster of the app. Panics outside the app (a programming error, not a runtime one).
pub fn use_toaster() -> Toaster {
    expect_context::<Toaster>()
}

/// Where toasts appear. Errors are announced at once (`role="alert"`), others politely.
#[component]
pub fn ToastRegion() -> impl IntoView {
    let toaster = use_toaster();
    view! {
        <div class="toast-region" role="region" aria-label="Notifications">
            <For each=move || toaster.toasts.get() key=|toast| toast.id let:toast>
                <div
                    class=match toast.kind {
                        ToastKind::Success => "toast toast-success",
                        ToastKind::Error => "toast toast-error",
                        ToastKind::Info => "toast toast-info",
                    }
                    role=if toast.kind == ToastKind::Error { "alert" } else { "status" }
                >
                    <span class="toast-text">{toast.text.clone()}</span>
                    {toast
                        .link
                        .clone()
                        .map(|(href, text)| view! { <a class="toast-link" href=href>{text}</a> })}
                    <button
                        type="button"
                        class="toast-dismiss"
                        aria-label="Dismiss notification"
                        on:click=move |_| toaster.dismiss(toast.id)
                    >
                        "×"
                    </button>
                </div>
            </For>
        </div>
    }
}
