//! The change set: coming.
