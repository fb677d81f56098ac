//! The outcome of checking one value, shared by the value checks (`values`, `creds`,
//! `disknames`). A leaf: it imports nothing of the crate, so those modules need not import
//! each other for it.

/// The outcome of checking one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check<T> {
    /// Fine, here is the normalised value.
    Ok(T),
    /// Usable, but probably not what was meant.
    Warn(T, String, Option<String>),
    /// Refused: message and hint.
    Err(String, Option<String>),
}

pub(crate) fn err<T>(msg: impl Into<String>) -> Check<T> {
    Check::Err(msg.into(), None)
}

pub(crate) fn err_hint<T>(msg: impl Into<String>, hint: impl Into<String>) -> Check<T> {
    Check::Err(msg.into(), Some(hint.into()))
}
