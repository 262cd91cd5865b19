use leptos::html::Dialog;
use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;

/// A modal dialog on the native `<dialog>`: while open the rest of the page is inert, Tab stays
/// inside, Escape or the close button or a click on the backdrop closes it, and focus returns to
/// the element that opened it.
#[component]
pub fn Modal(
    #[prop(into)] id: String,
    #[prop(into)] title: String,
    open: RwSignal<bool>,
    children: Children,
) -> impl IntoView {
    let dialog = NodeRef::<Dialog>::new();
    let opener = StoredValue::new_local(None::<leptos::web_sys::HtmlElement>);
    let title_id = format!("{id}-title");

    Effect::new(move |_| {
        let should_be_open = open.get();
        let Some(element) = dialog.get() else {
            return;
        };
        if should_be_open && !element.open() {
            let focused = document()
                .active_element()
                .and_then(|active| active.dyn_into::<leptos::web_sys::HtmlElement>().ok());
            opener.set_value(focused);
            if let Err(error) = element.show_modal() {
                leptos::logging::error!("could not open the dialog: {error:?}");
            }
        } else if !should_be_open && element.open() {
            element.close();
        }
    });

    let on_close = move |_| {
        open.set(false);
        if let Some(opener) = opener.get_value()
            && let Err(error) = opener.focus()
        {
            leptos::logging::error!("could not give focus back: {error:?}");
        }
    };

    // A click whose target is the dialog itself landed on the backdrop (the content fills a
    // child element).
    let on_click = move |event: leptos::ev::MouseEvent| {
        let on_backdrop = event
            .target()
            .zip(dialog.get_untracked())
            .is_some_and(|(target, element)| {
                target.dyn_ref::<leptos::web_sys::Element>() == Some(element.as_ref())
            });
        if on_backdrop {
            open.set(false);
        }
    };

    view! {
        <dialog
            node_ref=dialog
            id=id
            class="modal"
            aria-labelledby=title_id.clone()
            on:close=on_close
            on:click=on_click
        >
            <div class="modal-content">
                <header class="modal-header">
                    <h2 class="modal-title" id=title_id.clone()>{title}</h2>
                    <button
                        type="button"
                        class="button button-ghost modal-close"
                        aria-label="Close"
                        on:click=move |_| open.set(false)
                    >
                        "×"
                    </button>
                </header>
                <div class="modal-body">{children()}</div>
            </div>
        </dialog>
    }
}
