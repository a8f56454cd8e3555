//! The engine's operations. Each takes a typed request and a [`Session`](crate::session::Session),
//! reports its progress through [`Events`](crate::events::Events), and returns what it did: no
//! clap, no printing, no prompts. The command layer (`cmd/`) builds the request, asks what must
//! be asked between the steps an operation offers, and renders the result (docs/architecture.md).

pub mod backup;
pub mod cleanup;
pub mod diff;
pub mod doctor;
pub mod hook;
pub mod list;
pub mod migrate;
pub mod restore;
pub mod rollback;
pub mod scratch_copy;
pub mod status;
pub mod verify;

#[cfg(test)]
pub(crate) mod testkit;
