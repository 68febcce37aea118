//! The check of the line dialect's recogniser (`protocol::recognise`):
//! what every client (the example client, the load generator, the tests)
//! runs on each line a server sends it, so on bytes from the network too.

use crate::protocol::irc::text::strip_formatting;
use crate::protocol::{line, recognise, recognise_history, Dialect, Event, Reply, ServerLine};

/// Every line of the input (UTF-8, lossy; split at `\n`) through
/// `recognise`: a line it recognises renders back byte for byte to
/// itself (recognise → render is the identity; a `[#room] ` line through
/// `render_prefixed`, as the fan-out writes it; IRC formatting codes, which
/// the line dialect never writes, are removed), and the line a
/// `[history …]` line carries, when `recognise_history` reads it, renders
/// back to that line too (a `:me` action from history as the line dialect
/// shows actions).
pub fn check_server_lines(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        check_server_line(line);
    }
}

fn check_server_line(line: &str) {
    if let Some(recognised) = recognise(line) {
        let rendered = render_as(line, &recognised);
        let written = strip_formatting(line);
        assert_eq!(rendered, written, "{line:?} recognised as {recognised:?}");
        if let ServerLine::Reply(Reply::HistoryLine { line: past, .. }) = recognised {
            check_history_line(past);
        }
    }
    check_history_line(line);
}

fn check_history_line(line: &str) {
    let Some(event) = recognise_history(line) else {
        return;
    };
    assert!(
        matches!(event, Event::Said { .. } | Event::Acted { .. }),
        "{line:?} from history as {event:?}"
    );
    let rendered = render_as(line, &ServerLine::Event(event.clone()));
    let written = strip_formatting(line);
    assert_eq!(rendered, written, "{line:?} from history as {event:?}");
}

/// `recognised` rendered as the line dialect writes it (without its
/// `\n`): a `[#room] ` line, a room line for a member whose current room
/// is another, through `render_prefixed`, as the fan-out writes those.
fn render_as(line: &str, recognised: &ServerLine<'_>) -> String {
    if line::split_room_prefix(line).is_none() {
        return Dialect::Line.render_text(recognised);
    }
    let mut out = Vec::new();
    line::render_prefixed(recognised, &mut out);
    out.pop();
    String::from_utf8_lossy(&out).into_owned()
}
