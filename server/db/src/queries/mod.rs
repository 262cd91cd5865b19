//! Queries, one module per aggregate, each an `impl Database` block. Every query that reads a
//! user's data takes the owner's id and filters on it.

mod access_tokens;
mod audit;
mod credentials;
mod sessions;
mod users;

pub use audit::NewAuditEntry;
pub use credentials::NewCredential;
pub use users::NewUser;
