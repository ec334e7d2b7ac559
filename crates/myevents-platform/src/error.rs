//! [`Cause`]: the underlying error of a port's error variant (a driver's, a client's, or a message
//! where there is no error value), kept with its chain of sources for the log.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The cause of an error: an error value shared cheaply (cloning a port error clones a pointer),
/// whose [`Error::source`] chain is the wrapped error's. Two causes are equal when they read the
/// same (their `Display`), so that errors holding them can still be compared in tests.
#[derive(Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync>);

impl Cause {
    /// Wraps `error`.
    pub fn new(error: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }

    /// A cause that is only a message, where no error value exists (a broken invariant, a refusal
    /// the driver reports as text).
    pub fn msg(message: impl Into<String>) -> Self {
        Self(Arc::from(Box::<dyn Error + Send + Sync>::from(
            message.into(),
        )))
    }

    /// `error` while doing `what`: reads `what: error`; its source is `error`'s source.
    pub fn context(what: impl Into<String>, error: impl Error + Send + Sync + 'static) -> Self {
        Self::new(Context {
            what: what.into(),
            error: Box::new(error),
        })
    }
}

/// An error with what was being done when it happened.
#[derive(Debug)]
struct Context {
    what: String,
    error: Box<dyn Error + Send + Sync>,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.error)
    }
}

/// Its text tells the error, so the error is not also its source (a chain of sources would tell
/// it twice); the error's own sources follow.
impl Error for Context {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.source()
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Cause {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_cause_reads_as_its_error_and_keeps_the_chain() {
        let cause = Cause::new(Outer(std::io::Error::other("inner")));
        assert_eq!(cause.to_string(), "outer");
        assert_eq!(
            cause.source().map(ToString::to_string).as_deref(),
            Some("inner")
        );
        assert_eq!(Cause::msg("outer"), cause);
        assert_ne!(Cause::msg("other"), cause);
    }
}
