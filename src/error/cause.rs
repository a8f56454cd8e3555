//! The causes of an [`Error`](super::Error): error values kept as they are, so the `source()`
//! chain survives to the edge, or words when there is no value to keep.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// One `caused by:` line of an error: an error value, kept (shared, so errors stay `Clone`), or
/// words.
#[derive(Debug, Clone)]
pub struct Cause {
    /// What `caused by:` prints: the value's `Display` when it was recorded, or the words.
    shown: String,
    /// The error value, when the cause is one.
    value: Option<Arc<dyn StdError + Send + Sync>>,
}

impl Cause {
    /// An error value, shown by its `Display` (for an [`Error`](super::Error), its message only).
    pub fn of(err: impl StdError + Send + Sync + 'static) -> Cause {
        Cause {
            shown: err.to_string(),
            value: Some(Arc::new(err)),
        }
    }

    /// Words: a tool's output, a detail worked out here.
    pub fn text(text: impl Into<String>) -> Cause {
        Cause {
            shown: text.into(),
            value: None,
        }
    }

    /// An error with its own causes, shown on one line ([`Error::one_line`](super::Error::one_line))
    /// and kept as a value.
    pub fn in_one_line(err: super::Error) -> Cause {
        Cause {
            shown: err.one_line(),
            value: Some(Arc::new(err)),
        }
    }

    /// What `caused by:` prints.
    pub fn as_str(&self) -> &str {
        &self.shown
    }

    /// The error value, when the cause is one.
    pub fn value(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.value.as_deref()
    }

    /// The error value as a `T`, when it is one.
    pub fn downcast_ref<T: StdError + 'static>(&self) -> Option<&T> {
        self.value()?.downcast_ref()
    }

    /// What [`Error::source`](std::error::Error::source) gives for this cause: the value itself
    /// (so it downcasts), or these words.
    pub(super) fn as_source(&self) -> &(dyn StdError + 'static) {
        match &self.value {
            Some(value) => &**value,
            None => self,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// A cause stands for its value: its source is the value's.
impl StdError for Cause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.value.as_deref()?.source()
    }
}

/// What [`Error::caused_by`](super::Error::caused_by) takes: words (`String`, `&str`), a
/// [`Cause`], or one of the error types the crate meets, kept as a value. Another error type is
/// added to the list below, or passed as [`Cause::of`]`(e)`.
pub trait IntoCause {
    fn into_cause(self) -> Cause;
}

impl IntoCause for Cause {
    fn into_cause(self) -> Cause {
        self
    }
}

impl IntoCause for &Cause {
    fn into_cause(self) -> Cause {
        self.clone()
    }
}

impl IntoCause for String {
    fn into_cause(self) -> Cause {
        Cause::text(self)
    }
}

impl IntoCause for &str {
    fn into_cause(self) -> Cause {
        Cause::text(self)
    }
}

impl IntoCause for &String {
    fn into_cause(self) -> Cause {
        Cause::text(self.as_str())
    }
}

/// Error types kept as values: their `Display` is the cause shown.
macro_rules! error_values {
    ($($t:ty),* $(,)?) => {
        $(impl IntoCause for $t {
            fn into_cause(self) -> Cause {
                Cause::of(self)
            }
        })*
    };
}

error_values!(
    super::Error,
    std::io::Error,
    serde_json::Error,
    rusqlite::Error,
    chrono::ParseError,
    object_store::Error,
    reqwest::Error,
    url::ParseError,
);
