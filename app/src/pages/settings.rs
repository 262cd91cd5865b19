use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{
    AppLayout, Button, ButtonVariant, Card, Input, Modal, Select, ToastKind, use_toaster,
};
use crate::preferences::{choose_theme, reset, save_editor_font_size, use_preferences};
use crate::types::{EDITOR_FONT_SIZES, Theme, parse_editor_font_size};

/// Settings: appearance (theme), editor font size, and a reset to defaults.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let preferences = use_preferences();
    let toaster = use_toaster();

    let theme_options = Theme::ALL
        .iter()
        .map(|theme| (theme.as_str().to_owned(), theme.label().to_owned()))
        .collect::<Vec<_>>();
    let on_theme_change = Callback::new(move |value: String| match value.parse::<Theme>() {
        Ok(theme) => choose_theme(theme, true),
        Err(error) => toaster.show(ToastKind::Error, error.to_string()),
    });

    let font_size_text = RwSignal::new(preferences.editor_font_size.get_untracked().to_string());
    let font_size_error = RwSignal::new(None::<String>);
    let saving = RwSignal::new(false);
    let save_font_size = move || {
        let text = font_size_text.get_untracked();
        // Checked here for an immediate answer, and again by the server, which decides.
        if let Err(error) = parse_editor_font_size(&text) {
            font_size_error.set(Some(error.to_string()));
            return;
        }
        font_size_error.set(None);
        saving.set(true);
        let save = save_editor_font_size(text);
        leptos::task::spawn_local(async move {
            match save.await {
                Ok(size) => {
                    font_size_text.set(size.to_string());
                    toaster.show(
                        ToastKind::Success,
                        format!("Editor font size set to {size} px."),
                    );
                }
                Err(error) => {
                    font_size_error.set(Some(error.to_string()));
                    toaster.show(
                        ToastKind::Error,
                        format!("The font size was not saved. {error}"),
                    );
                }
            }
            saving.set(false);
        });
    };

    let confirm_reset = RwSignal::new(false);
    let do_reset = move || {
        confirm_reset.set(false);
        let reset = reset();
        leptos::task::spawn_local(async move {
            match reset.await {
                Ok(defaults) => {
                    font_size_text.set(defaults.editor_font_size.to_string());
                    font_size_error.set(None);
                    toaster.show(ToastKind::Success, "Preferences reset to their defaults.");
                }
                Err(error) => toaster.show(ToastKind::Error, format!("Nothing was reset. {error}")),
            }
        });
    };

    view! {
        <Title text="Settings · Async Coder"/>
        <AppLayout>
            <div class="page">
                <h1>"Settings"</h1>
                <Card
                    title="Appearance"
                    description="Applies at once, on every page, and is remembered by this browser."
                >
                    <Select
                        id="theme"
                        label="Theme"
                        options=theme_options
                        value=Signal::derive(move || preferences.theme.get().as_str().to_owned())
                        on_change=on_theme_change
                        hint="System follows your operating system's light or dark setting."
                    />
                </Card>
                <Card title="Editor" description="How code looks in the editor.">
                    <form
                        class="inline-form"
                        novalidate
                        on:submit=move |event| {
                            event.prevent_default();
                            save_font_size();
                        }
                    >
                        <Input
                            id="editor-font-size"
                            label="Font size (pixels)"
                            value=font_size_text
                            input_mode="numeric"
                            hint=format!(
                                "A whole number from {} to {}.",
                                EDITOR_FONT_SIZES.start(),
                                EDITOR_FONT_SIZES.end(),
                            )
                            error=font_size_error
                        />
                        <Button kind="submit" id="save-editor-font-size" disabled=saving>
                            "Save"
                        </Button>
                    </form>
                    <p class="editor-sample" aria-hidden="true">"fn main() { println!(\"hello\"); }"</p>
                </Card>
                <Card title="Reset" description="Go back to the default theme and font size.">
                    <Button
                        variant=ButtonVariant::Secondary
                        id="reset-preferences"
                        on_click=Callback::new(move |_| confirm_reset.set(true))
                    >
                        "Reset preferences…"
                    </Button>
                </Card>
            </div>
            <Modal id="confirm-reset" title="Reset preferences?" open=confirm_reset>
                <p>"The theme goes back to System and the editor font size to 14 pixels."</p>
                <div class="modal-actions">
                    <Button
                        variant=ButtonVariant::Secondary
                        id="cancel-reset"
                        on_click=Callback::new(move |_| confirm_reset.set(false))
                    >
                        "Cancel"
                    </Button>
                    <Button
                        variant=ButtonVariant::Danger
                        id="confirm-reset-button"
                        on_click=Callback::new(move |_| do_reset())
                    >
                        "Reset"
                    </Button>
                </div>
            </Modal>
        </AppLayout>
    }
}
