use leptos::prelude::*;
use leptos_meta::Title;

use crate::chat::ChatPanel;
use crate::components::AppLayout;
use crate::tasks::TaskNotifier;

/// `/chat`: conversations outside any project (no file context, nothing to apply code to).
#[component]
pub fn ChatPage() -> impl IntoView {
    view! {
        <Title text="Chat · Async Coder"/>
        <AppLayout>
            <div class="chat-page">
                <ChatPanel/>
            </div>
            <TaskNotifier/>
        </AppLayout>
    }
}
