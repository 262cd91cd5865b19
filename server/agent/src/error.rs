//! The crate's one error type.

/// What can go wrong in the agent. Tool failures the model can act on are not errors of the
/// loop: they go back to the model as tool results; these are failures of the loop itself or of
/// what services provide.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A path outside the task's worktree, absolute, with `..`, or through a link that leaves it.
    #[error("the path {0:?} is outside the task's worktree")]
    PathRefused(String),
    /// The file or folder does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The file exists already.
    #[error("{0} exists already")]
    AlreadyExists(String),
    /// A file is not text.
    #[error("{0} is not a UTF-8 text file")]
    NotText(String),
    /// The file system or another store failed.
    #[error("input/output: {0}")]
    Io(String),
    /// A tool's arguments are wrong (the model is told).
    #[error("{0}")]
    InvalidArguments(String),
    /// A patch that cannot be applied (nothing was changed).
    #[error("the patch was not applied: {0}")]
    Patch(String),
    /// The journal could not be read or written.
    #[error("journal: {0}")]
    Journal(String),
    /// The model could not be asked.
    #[error("model: {0}")]
    Model(String),
    /// The budget store failed.
    #[error("budget: {0}")]
    Budget(String),
    /// A test's failpoint stopped the loop at this boundary, as a crash would.
    #[error("stopped at the failpoint {0:?}")]
    Aborted(crate::agent::Failpoint),
    /// A merge that cannot be made.
    #[error("conflict: {0}")]
    Conflict(String),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Io(error.to_string())
    }
}
