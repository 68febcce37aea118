//! The IRC codec against the Modern IRC documents' examples
//! (`modern.ircdocs.horse`: message format, numerics, registration) and
//! the IRCv3 specifications it follows, one file per part.

mod burst;
mod chathistory;
mod command;
mod delivery;
mod mask;
mod message;
mod numerics;
mod registration;
mod replies;
mod sasl;
mod text;

use super::*;

/// `line` parsed; panics when it is not a message.
fn parse(line: &str) -> Message<'_> {
    Message::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// The parameters of `message`, as a vector.
fn params<'a>(message: &Message<'a>) -> Vec<&'a str> {
    message.params.as_slice().to_vec()
}
