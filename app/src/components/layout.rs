use leptos::prelude::*;
use leptos_router::components::A;

use super::Session;
use crate::preferences::{choose_theme, use_preferences};
use crate::types::{Theme, UserRole};

/// The application frame: header, sidebar navigation and the main area pages fill. On narrow
/// screens, and always where `collapsed` (the workspace, which needs the width), the navigation
/// is a menu opened by the header's "Menu" button.
#[component]
pub fn AppLayout(children: Children, #[prop(optional)] collapsed: bool) -> impl IntoView {
    let Session(user) = expect_context::<Session>();
    let menu_open = RwSignal::new(false);
    let admin_link = move || {
        Suspend::new(async move {
            user.await
                .filter(|person| person.role == UserRole::Admin)
                .map(|_| {
                    view! {
                        <li>
                            <A href="/admin">"Administration"</A>
                        </li>
                    }
                })
        })
    };
    view! {
        <div class="app-shell" class:nav-collapsed=collapsed class:nav-open=move || menu_open.get()>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="app-header">
                <div class="header-start">
                    <button
                        type="button"
                        id="nav-toggle"
                        class="button button-ghost nav-toggle"
                        aria-controls="main-nav"
                        aria-expanded=move || menu_open.get().to_string()
                        on:click=move |_| menu_open.update(|open| *open = !*open)
                    >
                        <span aria-hidden="true">"☰"</span>
                        <span class="nav-toggle-text">"Menu"</span>
                    </button>
                    <a class="brand" href="/">
                        <img src="/icons/icon.svg" alt="" width="24" height="24"/>
                        <span>"Async Coder"</span>
                    </a>
                </div>
                <div class="header-actions">
                    <ThemeToggle/>
                    <super::AccountMenu/>
                </div>
            </header>
            <div class="app-body">
                <nav class="sidebar" id="main-nav" aria-label="Main" on:click=move |_| menu_open.set(false)>
                    <ul>
                        <li>
                            <A href="/" exact=true>"Home"</A>
                        </li>
                        <li>
                            <A href="/projects">"Projects"</A>
                        </li>
                        <li>
                            <A href="/chat">"Chat"</A>
                        </li>
                        <li>
                            <A href="/tasks">"Tasks"</A>
                        </li>
                        <li>
                            <A href="/account">"Account"</A>
                        </li>
                        <li>
                            <A href="/settings/providers">"AI providers"</A>
                        </li>
                        <li>
                            <A href="/settings" exact=true>"Settings"</A>
                        </li>
                        <Transition fallback=|| ()>{admin_link}</Transition>
                    </ul>
                </nav>
                <main id="main" class="app-main" tabindex="-1">
                    {children()}
                </main>
            </div>
        </div>
    }
}

/// Cycles light → dark → system and saves the choice.
#[component]
pub fn ThemeToggle() -> impl IntoView {
    let preferences = use_preferences();
    let label = move || {
        let theme = preferences.theme.get();
        format!(
            "Theme: {}. Switch to {}.",
            theme.label(),
            theme.next().label()
        )
    };
    let icon = move || match preferences.theme.get() {
        Theme::Light => "☀",
        Theme::Dark => "☾",
        Theme::System => "◐",
    };
    view! {
        <button
            type="button"
            id="theme-toggle"
            class="button button-ghost theme-toggle"
            aria-label=label
            title=label
            data-theme-choice=move || preferences.theme.get().as_str()
            on:click=move |_| choose_theme(preferences.theme.get_untracked().next(), false)
        >
            <span aria-hidden="true">{icon}</span>
            <span class="theme-toggle-text">{move || preferences.theme.get().label()}</span>
        </button>
    }
}
