//! The engine's operations: what each command does, without parsing its arguments or printing
//! (docs/architecture.md). Each takes a [`crate::session::Session`], reports progress through
//! its events, and returns typed results the command layer renders.

pub mod doctor;
pub mod fetch;
pub mod verify;
