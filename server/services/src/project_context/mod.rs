//! Each project's context index, kept up to date as files are saved, moved and deleted, saved to
//! disk and read back after a restart; and the context chosen for a chat message from it.
//!
//! A project's index is loaded (or built) in the background the first time something asks for
//! it. Requests never wait for that: they use what the index holds now, and the manifest says
//! when it is still being built.
//!
//! Several instances may each keep an index of one project. Each index knows the version of
//! every file it reflects; before it ranks, a request compares them with the database's (paths
//! and versions only) and brings the index up to date with what changed elsewhere (saves,
//! moves, deletes on another instance), so no request ranks files older than the database held
//! when it asked.

mod choosing;
mod index;
mod request;

pub use choosing::{ChosenContext, choices_of, editor_candidates};
pub use context::{Choice, Item, ItemKind, Manifest};
pub use index::{ContextIndexes, IndexPhase, IndexStatus, ProjectIndex};
pub(crate) use request::check_context;
pub use request::{ContextInput, ContextPolicy, CurrentFile, MAX_CONTEXT_CHARS, Selection};
