//! Integration tests: the real `faber-db` binary, run in temporary project roots.

mod harness;

mod architecture;
mod bad_input;
mod chaos;
mod cleanup;
mod config;
mod corruption;
mod docs;
mod encryption;
mod hook;
mod hook_attack;
mod hostile;
mod inplace;
mod interrupted;
mod json;
mod launcher;
mod lifecycle;
mod migrations;
mod mock_api;
mod mysql;
mod notify;
mod offsite;
mod plan;
mod plugin;
mod plugin_e2e;
mod postgres;
mod preflight;
mod protected;
mod quickstart;
mod release;
mod reliability;
mod roundtrip;
mod safety;
mod services;
mod tty;
