//! tree-sitter's allocations go to mimalloc. A parse allocates and frees a node for every token
//! and a stack entry for every step, and dropping a tree frees them all again: with glibc's
//! malloc that was a fifth of the time the index build of a TypeScript project spends (the
//! allocator's own functions, its consolidations and the frees of the tree). Only tree-sitter's
//! C code uses it; the rest of the server keeps the system allocator, which holds less memory at
//! rest (see the gateway's figures in the README).
//!
//! tree-sitter has one process-wide allocator, and memory it allocated with one allocator must
//! never be freed with another: every parser, query and query cursor of this crate is made by
//! the functions below, which switch the allocator once, before the first of them exists.

#![allow(unsafe_code)]

use std::sync::Once;

use tree_sitter::{Language, Parser, Query, QueryCursor, QueryError};

static INSTALLED: Once = Once::new();

fn install() {
    INSTALLED.call_once(|| {
        // SAFETY: called once, before any tree-sitter object of this process exists (every one
        // is made through this module, after this call), so nothing allocated by the previous
        // allocator is ever freed by mimalloc. The four functions are mimalloc's own and keep
        // the C contracts of malloc, calloc, realloc and free, from any thread.
        unsafe {
            tree_sitter::set_allocator(
                Some(libmimalloc_sys::mi_malloc),
                Some(libmimalloc_sys::mi_calloc),
                Some(libmimalloc_sys::mi_realloc),
                Some(libmimalloc_sys::mi_free),
            );
        }
    });
}

/// A new parser (with no language set).
pub fn parser() -> Parser {
    install();
    Parser::new()
}

/// A query over `grammar`.
pub fn query(grammar: &Language, source: &str) -> Result<Query, QueryError> {
    install();
    Query::new(grammar, source)
}

/// A new query cursor.
pub fn query_cursor() -> QueryCursor {
    install();
    QueryCursor::new()
}
