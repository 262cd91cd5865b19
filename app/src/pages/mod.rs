//! One module per route.

mod account;
mod admin;
mod auth;
mod chat;
mod error;
mod landing;
mod lazy;
mod not_found;
mod projects;
mod providers;
mod settings;

pub use account::AccountPage;
pub use admin::AdminPage;
pub use auth::{SignInPage, SignUpPage};
pub use chat::ChatPage;
pub use error::ErrorPage;
pub use landing::LandingPage;
pub use lazy::{
    AccountRoute, AdminRoute, ChatRoute, ProjectsRoute, ProvidersRoute, SettingsRoute, SignInRoute,
    SignUpRoute, TaskRoute, TasksRoute, WorkspaceRoute,
};
pub use not_found::NotFoundPage;
pub use projects::ProjectsPage;
pub use providers::ProvidersPage;
pub use settings::SettingsPage;
