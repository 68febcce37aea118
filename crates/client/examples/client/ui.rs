//! Drawing the full screen from [`State`] and [`Editor`]:
//!
//! ```text
//! ┌ message pane (timestamps, wrapped, scrollable) ┐│ #room
//! │                                                ││ users (N)
//! │                                                ││ rooms
//! status: server · nick · room · connection
//! > input line
//! ```
//!
//! The pane wraps lines itself, grapheme by grapheme with `unicode-width`,
//! so a CJK character or an emoji takes its two columns and is never cut in
//! half, and the scroll position is counted in screen rows. All text reaching
//! here has had its control characters escaped ([`crate::text::for_screen`]).

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

use crate::editor::Editor;
use crate::state::{Kind, Link, Message, State, Status};
use crate::text::{for_screen, Clock};
use loopchat_client::e2e::Lock;

/// The side panel's width, shown only when the screen is wide enough.
const PANEL_WIDTH: u16 = 24;
const PANEL_MIN_SCREEN: u16 = 60;
/// `HH:MM ` before every message; wrapped rows are indented to match.
const TIME_WIDTH: usize = 6;
const PROMPT: &str = "> ";

/// Colours for nicks: the same nick gets the same colour on every screen.
/// Red is kept for errors.
const NICK_COLOURS: [Color; 10] = [
    Color::Cyan,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::LightCyan,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
];

pub fn nick_colour(nick: &str) -> Color {
    // FNV-1a over the lower-cased nick: nicks compare case-insensitively.
    let mut hash: u32 = 0x811c_9dc5;
    for b in nick.to_lowercase().bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    NICK_COLOURS[hash as usize % NICK_COLOURS.len()]
}

pub fn nick_style(nick: &str) -> Style {
    Style::new()
        .fg(nick_colour(nick))
        .add_modifier(Modifier::BOLD)
}

/// `text` in `style`, its `http://` and `https://` addresses underlined.
fn linked(text: &str, style: Style) -> Vec<(String, Style)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let end = rest[at..]
            .find(char::is_whitespace)
            .map_or(rest.len(), |n| at + n);
        if at > 0 {
            out.push((rest[..at].to_string(), style));
        }
        out.push((
            rest[at..end].to_string(),
            style.add_modifier(Modifier::UNDERLINED),
        ));
        rest = &rest[end..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push((rest.to_string(), style));
    }
    out
}

/// The mark of a private conversation's lock in the list and the panel's
/// title: a session or a changed key only.
pub(crate) fn lock_mark(lock: Lock) -> &'static str {
    match lock {
        Lock::Secure { verified: false } => " 🔒",
        Lock::Secure { verified: true } => " 🔒✓",
        Lock::KeyChanged => " ⚠",
        Lock::Pending | Lock::Plain => "",
    }
}

/// The same on the status line, in words: plain is said too.
fn lock_words(lock: Lock) -> &'static str {
    match lock {
        Lock::Secure { verified: false } => "🔒 end-to-end",
        Lock::Secure { verified: true } => "🔒✓ end-to-end, verified",
        Lock::KeyChanged => "⚠ key changed, nothing sent until :e2e-accept",
        Lock::Pending => "end-to-end, no session yet",
        Lock::Plain => "plain, the server can read it",
    }
}

/// A message as styled pieces of text, before wrapping.
fn pieces(message: &Message) -> Vec<(String, Style)> {
    let dim = Style::new().fg(Color::DarkGray);
    let time_style = if message.history {
        dim.add_modifier(Modifier::ITALIC)
    } else {
        dim
    };
    let at = Clock::local_ms(message.at_ms).short();
    let mut out = vec![(format!("{at} "), time_style)];
    let plain = Style::new();
    match &message.kind {
        Kind::Chat { nick, text, own } => {
            out.push((nick.clone(), nick_style(nick)));
            out.push((": ".into(), plain));
            let style = if *own {
                Style::new().add_modifier(Modifier::BOLD)
            } else if message.mention {
                Style::new()
                    .fg(Color::LightYellow)
                    .add_modifier(Modifier::BOLD)
            } else {
                plain
            };
            out.extend(linked(text, style));
        }
        Kind::Action { nick, text, .. } => {
            let action = Style::new().add_modifier(Modifier::ITALIC);
            out.push(("* ".into(), action));
            out.push((
                nick.clone(),
                nick_style(nick).add_modifier(Modifier::ITALIC),
            ));
            out.push((" ".into(), action));
            out.extend(linked(text, action));
        }
        Kind::PmIn { from, text } => {
            let pm = Style::new().fg(Color::LightMagenta);
            out.push(("[pm] ".into(), pm.add_modifier(Modifier::BOLD)));
            out.push((from.clone(), nick_style(from)));
            out.push((": ".into(), pm));
            out.extend(linked(text, pm));
            // Not end to end: readable by the server.
            out.push((" (plain)".into(), dim));
        }
        Kind::PmOut { to, text } => {
            let pm = Style::new().fg(Color::LightMagenta);
            out.push(("[pm → ".into(), pm.add_modifier(Modifier::BOLD)));
            out.push((to.clone(), nick_style(to)));
            out.push(("] ".into(), pm.add_modifier(Modifier::BOLD)));
            out.push((text.clone(), pm));
            out.push((" (plain)".into(), dim));
        }
        Kind::E2eIn { from, text } => {
            let e2e = Style::new().fg(Color::LightGreen);
            out.push(("[e2e 🔒] ".into(), e2e.add_modifier(Modifier::BOLD)));
            out.push((from.clone(), nick_style(from)));
            out.push((format!(": {text}"), e2e));
        }
        Kind::E2eOut { to, text } => {
            let e2e = Style::new().fg(Color::LightGreen);
            out.push(("[e2e 🔒 → ".into(), e2e.add_modifier(Modifier::BOLD)));
            out.push((to.clone(), nick_style(to)));
            out.push(("] ".into(), e2e.add_modifier(Modifier::BOLD)));
            out.push((text.clone(), e2e));
        }
        Kind::Presence(text) => out.push((text.clone(), dim)),
        Kind::Info(text) => out.extend(linked(text, Style::new().fg(Color::Cyan))),
        Kind::Error(text) => out.push((
            text.clone(),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        )),
        Kind::Notice(text) => out.push((
            format!("-- {text}"),
            Style::new()
                .fg(Color::Yellow)
                .add_modifier(Modifier::ITALIC),
        )),
    }
    if message.history || message.status == Status::Sending {
        for (_, style) in out.iter_mut().skip(1) {
            *style = style.add_modifier(Modifier::DIM);
        }
    }
    match &message.status {
        Status::Sent => {}
        Status::Sending if matches!(message.kind, Kind::E2eOut { .. }) => {
            out.push((" (waiting for the end-to-end session)".into(), dim));
        }
        Status::Sending => out.push((" (sending)".into(), dim)),
        Status::Refused(why) => out.push((
            format!(" ✗ refused: {why}"),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        )),
    }
    out
}

/// The row between two days: `──── Mon 2026-12-07 ────`, as wide as the
/// pane.
fn day_separator(day: &Clock, width: usize) -> Line<'static> {
    let label = format!(" {} ", day.day_label());
    let side = width.saturating_sub(label.width()) / 2;
    let text = format!(
        "{}{label}{}",
        "─".repeat(side),
        "─".repeat(width.saturating_sub(side + label.width()))
    );
    Line::from(Span::styled(
        fit(&text, width),
        Style::new().fg(Color::DarkGray),
    ))
}

/// Cuts styled text into rows of at most `width` columns, breaking after a
/// space where the row has one; rows after the first start with `indent`
/// spaces. A grapheme wider than the room left moves to the next row whole.
fn wrap(pieces: &[(String, Style)], width: usize, indent: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let indent = if indent + 8 > width { 0 } else { indent };
    let cells: Vec<(&str, Style, usize)> = pieces
        .iter()
        .flat_map(|(text, style)| text.graphemes(true).map(move |g| (g, *style, g.width())))
        .collect();
    // Each row is a range of cells.
    let mut rows = Vec::new();
    let mut start = 0;
    while start < cells.len() || rows.is_empty() {
        let room = if rows.is_empty() {
            width
        } else {
            width - indent
        };
        let mut used = 0;
        let mut end = start;
        let mut last_space = None;
        while end < cells.len() && used + cells[end].2 <= room {
            used += cells[end].2;
            if cells[end].0 == " " {
                last_space = Some(end);
            }
            end += 1;
        }
        if end == start && end < cells.len() {
            // A grapheme wider than a whole row: show it anyway.
            end += 1;
        } else if end < cells.len() {
            // Break after the last space, unless that would leave the row
            // half empty (a very long word is cut instead).
            if let Some(space) = last_space.filter(|&s| s + 1 - start > (room / 2).max(indent)) {
                end = space + 1;
            }
        }
        rows.push(start..end);
        start = end;
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, range)| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            if i > 0 && indent > 0 {
                spans.push(Span::raw(" ".repeat(indent)));
            }
            let mut run = String::new();
            let mut run_style = Style::new();
            for &(g, style, _) in &cells[range] {
                if style != run_style && !run.is_empty() {
                    spans.push(Span::styled(std::mem::take(&mut run), run_style));
                }
                run_style = style;
                run.push_str(g);
            }
            if !run.is_empty() {
                spans.push(Span::styled(run, run_style));
            }
            Line::from(spans)
        })
        .collect()
}

/// How many rows `message` takes in a pane `width` columns wide.
pub fn rows_of(message: &Message, width: usize) -> usize {
    wrap(&pieces(message), width, TIME_WIDTH).len()
}

pub fn draw(frame: &mut Frame, state: &mut State, editor: &Editor) {
    let area = frame.area();
    let [top, status, input] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let (pane, panel) = if area.width >= PANEL_MIN_SCREEN {
        let [pane, panel] =
            Layout::horizontal([Constraint::Min(1), Constraint::Length(PANEL_WIDTH)]).areas(top);
        (pane, Some(panel))
    } else {
        (top, None)
    };
    draw_messages(frame, state, pane);
    if let Some(panel) = panel {
        crate::panel::draw(frame, state, panel);
    }
    draw_status(frame, state, status);
    draw_input(frame, editor, input);
}

fn draw_messages(frame: &mut Frame, state: &mut State, area: Rect) {
    let width = usize::from(area.width);
    // The room's topic, under its name: the pane's first row.
    let topic = state.shown().topic.clone();
    let area = match topic {
        Some(topic) if area.height > 2 => {
            let [header, rest] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
            let text = fit(&format!("topic: {}", for_screen(&topic)), width);
            frame.render_widget(
                Paragraph::new(Span::styled(
                    text,
                    Style::new().fg(Color::Cyan).add_modifier(Modifier::ITALIC),
                )),
                header,
            );
            rest
        }
        _ => area,
    };
    let height = usize::from(area.height);
    state.pane_width = width;
    state.pane_height = height;
    // Wrap from the newest message back until the view is full, with a
    // separator where the day changes.
    let mut rows: Vec<Line<'static>> = Vec::new();
    let want = height + state.scroll;
    let messages = &state.shown().messages;
    for (i, message) in messages.iter().enumerate().rev() {
        let mut lines = wrap(&pieces(message), width, TIME_WIDTH);
        lines.reverse();
        rows.extend(lines);
        let day = Clock::local_ms(message.at_ms);
        let before = i
            .checked_sub(1)
            .map(|j| Clock::local_ms(messages[j].at_ms).day);
        if before.is_some_and(|d| d != day.day) || (before.is_none() && day.day != Clock::now().day)
        {
            rows.push(day_separator(&day, width));
        }
        if rows.len() >= want {
            break;
        }
    }
    // Scrolled past the oldest row: stop at the top.
    state.scroll = state.scroll.min(rows.len().saturating_sub(height));
    let shown: Vec<Line<'static>> = rows
        .into_iter()
        .skip(state.scroll)
        .take(height)
        .rev()
        .collect();
    // Bottom-aligned: a short conversation sits just above the status line.
    let pad = height.saturating_sub(shown.len());
    let mut lines = vec![Line::default(); pad];
    lines.extend(shown);
    frame.render_widget(Paragraph::new(lines), area);
}

/// `text` cut to `width` columns, ending in `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for g in text.graphemes(true) {
        let w = g.width();
        if used + w + 1 > width {
            break;
        }
        out.push_str(g);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

fn draw_status(frame: &mut Frame, state: &mut State, area: Rect) {
    let bar = Style::new().bg(Color::Blue).fg(Color::White);
    let (link, link_style) = match state.link {
        Link::Connected if state.welcomed => ("connected".to_string(), bar),
        Link::Connected => ("connecting".to_string(), bar),
        Link::Retrying { attempt, at } => {
            let left = at.saturating_duration_since(std::time::Instant::now());
            (
                format!("reconnecting in {} s (try {attempt})", left.as_secs() + 1),
                bar.fg(Color::LightYellow).add_modifier(Modifier::BOLD),
            )
        }
        Link::Lost => (
            "disconnected".to_string(),
            bar.fg(Color::LightRed).add_modifier(Modifier::BOLD),
        ),
    };
    let mut right = vec![Span::styled(format!("{link} "), link_style)];
    if state.scroll > 0 {
        let below = match state.unseen {
            0 => "scrolled up (PgDn) │ ".to_string(),
            n => format!("scrolled up, {n} new (PgDn) │ "),
        };
        right.insert(0, Span::styled(below, bar.fg(Color::LightYellow)));
    } else {
        state.unseen = 0;
    }
    let right_width: usize = right.iter().map(|s| s.content.width()).sum();
    // The connection state always shows; on a narrow screen the address
    // gives way first, then the nick: the room stays.
    let left_room = usize::from(area.width).saturating_sub(right_width + 1);
    let view = match state.view_lock() {
        Some(lock) => format!("{} ({})", state.view_name(), lock_words(lock)),
        None => state.view_name(),
    };
    let nick = state.nick.as_deref().unwrap_or("-");
    let left = [
        format!(" loopchat {} │ {nick} │ {view}", for_screen(&state.server)),
        format!(" {nick} │ {view}"),
        format!(" {view}"),
    ]
    .into_iter()
    .find(|left| left.width() <= left_room)
    .unwrap_or_else(|| format!(" {view}"));
    let [left_area, right_area] = Layout::horizontal([
        Constraint::Min(0),
        Constraint::Length(right_width.min(usize::from(area.width)) as u16),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(Span::styled(
            fit(&left, left_room),
            bar.add_modifier(Modifier::BOLD),
        ))
        .style(bar),
        left_area,
    );
    frame.render_widget(Paragraph::new(Line::from(right)).style(bar), right_area);
}

fn draw_input(frame: &mut Frame, editor: &Editor, area: Rect) {
    let room = usize::from(area.width).saturating_sub(PROMPT.len());
    let (shown, cursor) = editor.view(room);
    let line = Line::from(vec![
        Span::styled(PROMPT, Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(shown),
    ]);
    frame.render_widget(Paragraph::new(line), area);
    let x = area.x + (PROMPT.len() + cursor).min(usize::from(area.width.saturating_sub(1))) as u16;
    frame.set_cursor_position(Position::new(x, area.y));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(rows: &[Line]) -> Vec<String> {
        rows.iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn wide_characters_wrap_whole_and_rows_are_indented() {
        let rows = wrap(
            &[
                ("12:00 ".into(), Style::new()),
                ("ab世界世界".into(), Style::new()),
            ],
            15,
            6,
        );
        // 界 would need columns 15 and 16: it moves down whole.
        assert_eq!(texts(&rows), ["12:00 ab世界世", "      界"]);
        let rows = wrap(&[("12:00 hello there world".into(), Style::new())], 20, 6);
        assert_eq!(texts(&rows), ["12:00 hello there ", "      world"]);
        for row in &rows {
            let width: usize = row.spans.iter().map(|s| s.content.width()).sum();
            assert!(width <= 20);
        }
    }

    #[test]
    fn links_are_underlined_and_the_rest_is_not() {
        let plain = Style::new();
        let pieces = linked("see https://example.com/a and http://x.org", plain);
        let underlined: Vec<&str> = pieces
            .iter()
            .filter(|(_, s)| s.add_modifier.contains(Modifier::UNDERLINED))
            .map(|(t, _)| t.as_str())
            .collect();
        assert_eq!(underlined, ["https://example.com/a", "http://x.org"]);
        let all: String = pieces.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(all, "see https://example.com/a and http://x.org");
        assert_eq!(linked("javascript:alert(1)", plain).len(), 1);
    }

    #[test]
    fn plain_private_lines_are_marked_and_e2e_ones_are_not() {
        let text = |kind: Kind, status: Status| -> String {
            let message = Message {
                at_ms: 0,
                kind,
                history: false,
                mention: false,
                id: None,
                status,
                seq: 1,
            };
            pieces(&message)
                .into_iter()
                .skip(1)
                .map(|(t, _)| t)
                .collect()
        };
        let (from, to, words) = ("bob".to_string(), "bob".to_string(), "hi".to_string());
        assert_eq!(
            text(
                Kind::PmIn {
                    from: from.clone(),
                    text: words.clone()
                },
                Status::Sent
            ),
            "[pm] bob: hi (plain)"
        );
        assert_eq!(
            text(
                Kind::PmOut {
                    to: to.clone(),
                    text: words.clone()
                },
                Status::Sending
            ),
            "[pm → bob] hi (plain) (sending)"
        );
        assert_eq!(
            text(
                Kind::E2eIn {
                    from,
                    text: words.clone()
                },
                Status::Sent
            ),
            "[e2e 🔒] bob: hi"
        );
        assert_eq!(
            text(Kind::E2eOut { to, text: words }, Status::Sending),
            "[e2e 🔒 → bob] hi (waiting for the end-to-end session)"
        );
        assert_eq!(lock_mark(Lock::Secure { verified: false }), " 🔒");
        assert_eq!(lock_mark(Lock::Plain), "", "the list marks locks only");
        assert!(lock_words(Lock::Plain).contains("the server can read it"));
    }

    #[test]
    fn fit_cuts_whole_graphemes_and_marks_the_cut() {
        assert_eq!(fit("alice", 5), "alice");
        assert_eq!(fit("alicia", 5), "alic…");
        assert_eq!(fit("世界世界", 6), "世界…");
        assert_eq!(fit("世界世界", 5), "世界…");
        assert_eq!(fit("abc", 0), "");
    }

    #[test]
    fn nick_colours_ignore_case_and_never_use_red() {
        assert_eq!(nick_colour("Alice"), nick_colour("alice"));
        for nick in ["a", "b", "carol", "dave", "eve", "x1", "zed"] {
            assert_ne!(nick_colour(nick), Color::Red);
        }
    }
}
