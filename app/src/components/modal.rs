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
    // A plain (thread-safe) stored value: the server renders on any thread, and only the browser
    // ever puts an element in it (the wrapper is single-threaded there).
    let opener = StoredValue::new(None::<send_wrapper::SendWrapper<leptos::web_sys::HtmlElement>>);
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
            opener.set_value(focused.map(send_wrapper::SendWrapper::new));
            if let Err(error) = element.show_modal() {
                leptos::logging::error!("could not open the dialog: {error:?}");
            }
            // The browser focuses the first focusable element, often the close button: a dialog
            // that asks for something opens with focus on its first field.
            if let Ok(Some(field)) = element.query_selector(FIRST_FIELD)
                && let Ok(field) = field.dyn_into::<leptos::web_sys::HtmlElement>()
                && let Err(error) = field.focus()
            {
                leptos::logging::error!("could not focus the dialog's first field: {error:?}");
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
        let on_backdrop =
            event
                .target()
                .zip(dialog.get_untracked())
                .is_some_and(|(target, element)| {
                    target.dyn_ref::<leptos::web_sys::Element>() == Some(element.as_ref())
                });
        if on_backdrop {
            open.set(false);
        }
    };

    // Tab from the last control goes to the first, Shift+Tab from the first to the last: focus
    // never leaves the dialog (the native one lets it escape to the browser's own controls).
    let on_keydown = move |event: leptos::ev::KeyboardEvent| {
        if event.key() != "Tab" {
            return;
        }
        let Some(element) = dialog.get_untracked() else {
            return;
        };
        let focusable = focusable_elements(&element);
        let (Some(first), Some(last)) = (focusable.first(), focusable.last()) else {
            return;
        };
        let active = document().active_element();
        let at_edge = if event.shift_key() {
            active.as_ref() == Some(first.as_ref())
        } else {
            active.as_ref() == Some(last.as_ref())
        };
        if at_edge {
            event.prevent_default();
            let target = if event.shift_key() { last } else { first };
            if let Err(error) = target.focus() {
                leptos::logging::error!("could not move focus: {error:?}");
            }
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
            on:keydown=on_keydown
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

const FIRST_FIELD: &str = "input:not([disabled]):not([type=\"hidden\"]), select:not([disabled]), \
                           textarea:not([disabled])";

const FOCUSABLE: &str = "button:not([disabled]), [href], input:not([disabled]), select:not([disabled]), \
                         textarea:not([disabled]), [tabindex]:not([tabindex=\"-1\"])";

/// The elements inside `container` that Tab can reach, in document order.
fn focusable_elements(
    container: &leptos::web_sys::HtmlElement,
) -> Vec<leptos::web_sys::HtmlElement> {
    let Ok(nodes) = container.query_selector_all(FOCUSABLE) else {
        return Vec::new();
    };
    (0..nodes.length())
        .filter_map(|index| nodes.item(index))
        .filter_map(|node| node.dyn_into::<leptos::web_sys::HtmlElement>().ok())
        .collect()
}
