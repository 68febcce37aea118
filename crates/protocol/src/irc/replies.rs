//! Multi-line replies whose size depends on the chat: `NAMES` (`353`…
//! `366`), split so every line fits 512 bytes, and the topic a joiner gets
//! (`332`/`333`, or nothing). Pure rendering into the caller's buffer.

use super::message::MAX_MESSAGE_BYTES;
use super::numeric::{self, Numeric};

/// Appends `NAMES` for `channel`: as many `353` lines as the `names` need
/// (each `[prefix]nick`, `@` for an operator), each within
/// [`MAX_MESSAGE_BYTES`], then `366`. The joiner is among `names` when it
/// is the answer to a `JOIN`. A name longer than a line allows (none is:
/// nicks are at most 32 bytes) still gets a line of its own.
pub fn write_names<'n>(
    out: &mut Vec<u8>,
    server: &str,
    client: &str,
    channel: &str,
    names: impl IntoIterator<Item = &'n str>,
) {
    // ":server 353 client = #channel :" and CR LF.
    let fixed = 1 + server.len() + 5 + client.len() + 3 + channel.len() + 2 + 2;
    let room = MAX_MESSAGE_BYTES.saturating_sub(fixed);
    let mut line = String::new();
    let flush = |line: &mut String, out: &mut Vec<u8>| {
        if !line.is_empty() {
            numeric::write(
                out,
                server,
                Numeric::NamReply,
                client,
                &["=", channel],
                Some(line),
            );
            line.clear();
        }
    };
    for name in names {
        if !line.is_empty() && line.len() + 1 + name.len() > room {
            flush(&mut line, out);
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(name);
    }
    flush(&mut line, out);
    numeric::write(out, server, Numeric::EndOfNames, client, &[channel], None);
}

/// A channel's topic as a joiner (or `TOPIC #channel`) sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Topic<'a> {
    /// The text.
    pub text: &'a str,
    /// Who set it.
    pub set_by: &'a str,
    /// When, in Unix seconds.
    pub set_at: i64,
}

/// Appends `332` and `333` for a topic; for none, `331` when `asked` (the
/// answer to `TOPIC #channel`) and nothing on a join, as the documents say.
pub fn write_topic(
    out: &mut Vec<u8>,
    server: &str,
    client: &str,
    channel: &str,
    topic: Option<Topic<'_>>,
    asked: bool,
) {
    match topic {
        Some(topic) => {
            let text = Some(topic.text);
            numeric::write(out, server, Numeric::Topic, client, &[channel], text);
            let at = topic.set_at.to_string();
            let params = [channel, topic.set_by, &at];
            numeric::write(out, server, Numeric::TopicWhoTime, client, &params, None);
        }
        None if asked => numeric::write(out, server, Numeric::NoTopic, client, &[channel], None),
        None => {}
    }
}
