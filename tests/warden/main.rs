//! warden's integration suite: one binary, real servers on random ports,
//! the same behaviour tests on SQLite and PostgreSQL.
mod harness;
mod hygiene;
mod jwt;
mod kit;

mod abuse;
mod admin;
mod admin_plane;
mod api_permissions;
mod catalog;
mod cli;
mod console;
mod console_browser;
mod console_people;
mod discovery;
mod docs;
mod faults;
mod federation;
mod first_hour;
mod first_hour_two;
mod fuzz;
mod hostile;
mod in_flight;
mod inputs;
mod introspect;
mod keys;
mod layout;
mod malformed;
mod mcp;
mod mcp_ready;
mod observability;
mod offline;
mod platform;
mod replicas;
mod roles;
mod token;
