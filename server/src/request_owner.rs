//! One reactive owner per request, never another request's.
//!
//! Leptos keeps "the current owner" (the scope whose contexts `use_context` searches) in a
//! thread-local. `Owner::new_root`, which leptos_axum calls for every page it renders, sets that
//! thread-local and never restores it; the page's future then waits (for the database, say)
//! and the tokio worker thread goes on to poll other requests with the page's owner still
//! current. Any `Owner::new()` made by another request on that thread becomes a child of the
//! page's owner and sees its contexts: leptos_axum's static-file fallback then found the page's
//! `ResponseOptions`, applied them to the file's response and took their headers away (its
//! `extend_response` moves them out), so the page went out with its status but without its
//! Content-Security-Policy or cookies, and the file went out with the page's headers.
//!
//! [`IsolatedOwner`] wraps every request's future: before each poll the thread-local holds this
//! request's owner (or none), and after it, none, with whatever owner the request made kept for
//! its next poll. No request's poll can see another's owner, whichever thread polls it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use leptos::prelude::Owner;

/// A request's future, polled with its own reactive owner as the thread's current one.
pub struct IsolatedOwner<F> {
    inner: Pin<Box<F>>,
    owner: Option<Owner>,
}

impl<F> IsolatedOwner<F> {
    pub fn new(inner: F) -> Self {
        Self {
            inner: Box::pin(inner),
            owner: None,
        }
    }
}

impl<F: Future> Future for IsolatedOwner<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        clear_current_owner();
        if let Some(owner) = &this.owner {
            owner.set();
        }
        let result = this.inner.as_mut().poll(context);
        this.owner = Owner::current();
        clear_current_owner();
        result
    }
}

/// Leaves the thread without a current owner.
fn clear_current_owner() {
    if let Some(current) = Owner::current() {
        current.unset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A future that makes a root owner on its first poll (as leptos_axum's page rendering
    /// does), waits once, and then answers what owner is current.
    struct MakesARoot {
        made: Option<Owner>,
    }

    impl Future for MakesARoot {
        type Output = bool;

        fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<bool> {
            match &self.made {
                None => {
                    self.made = Some(Owner::new_root(None));
                    context.waker().wake_by_ref();
                    Poll::Pending
                }
                Some(made) => Poll::Ready(Owner::current().as_ref() == Some(made)),
            }
        }
    }

    #[test]
    fn an_owner_a_request_makes_is_current_for_it_and_for_no_one_else() {
        let waker = std::task::Waker::noop();
        let mut context = Context::from_waker(waker);
        let mut page = IsolatedOwner::new(MakesARoot { made: None });
        assert!(Pin::new(&mut page).poll(&mut context).is_pending());
        // Between polls of the page, the thread has no owner: another request's new owner
        // gets no parent.
        assert!(Owner::current().is_none());
        let other = Owner::new();
        assert!(other.parent().is_none());
        // Polled again, the page finds its own owner current.
        assert_eq!(Pin::new(&mut page).poll(&mut context), Poll::Ready(true));
        assert!(Owner::current().is_none());
    }

    #[test]
    fn without_the_wrapper_the_owner_leaks_to_the_next_request() {
        // The control: what leptos does on its own, which the wrapper exists for.
        let waker = std::task::Waker::noop();
        let mut context = Context::from_waker(waker);
        let mut page = MakesARoot { made: None };
        assert!(Pin::new(&mut page).poll(&mut context).is_pending());
        let other = Owner::new();
        assert!(other.parent().is_some());
        clear_current_owner();
    }
}
