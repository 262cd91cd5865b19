//! The design system: small, accessible building blocks every page uses.

mod button;
mod card;
mod input;
mod layout;
mod modal;
mod select;
mod session;
mod toast;

pub use button::{Button, ButtonVariant};
pub use card::Card;
pub use input::Input;
pub use layout::{AppLayout, ThemeToggle};
pub use modal::Modal;
pub use select::Select;
pub use session::{AccountMenu, Session, provide_session};
pub use toast::{ToastKind, ToastRegion, Toaster, provide_toaster, use_toaster};
