//! The side panel: the buffer on screen, its users (`•` marks us, `@` the
//! operators), then the list: the rooms we are in (numbered for Alt-N, with
//! their member count, unread lines and `@` for a mention), the other rooms,
//! and the private conversations.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Padding, Paragraph};
use ratatui::Frame;

use crate::state::{State, Target};
use crate::ui::{fit, lock_mark, nick_style};

/// One row of the list: `1 #lobby 2 +3@` (number for Alt-N, name, member
/// count, unread lines and `@` for a mention).
fn list_row(
    number: Option<usize>,
    name: &str,
    count: Option<usize>,
    marks: (u32, bool),
    current: bool,
    width: usize,
) -> Line<'static> {
    let number = number.map_or("  ".to_string(), |n| format!("{n} "));
    let count = count.map(|c| format!(" {c}")).unwrap_or_default();
    let unread = if marks.0 > 0 {
        format!(" +{}", marks.0)
    } else {
        String::new()
    };
    let marks = format!("{unread}{}", if marks.1 { "@" } else { "" });
    let name = fit(
        name,
        width.saturating_sub(number.len() + count.len() + marks.len()),
    );
    let style = if current {
        Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
    } else {
        Style::new()
    };
    Line::from(vec![
        Span::styled(number, Style::new().fg(Color::DarkGray)),
        Span::styled(name, style),
        Span::styled(count, Style::new().fg(Color::DarkGray)),
        Span::styled(
            marks,
            Style::new()
                .fg(Color::LightYellow)
                .add_modifier(Modifier::BOLD),
        ),
    ])
}

/// Draws the side panel in `area`.
pub fn draw(frame: &mut Frame, state: &State, area: Rect) {
    let inner_width = usize::from(area.width.saturating_sub(3));
    let shown = state.shown();
    let title = match &shown.target {
        Target::Room(room) => room.clone(),
        Target::Private(nick) => {
            format!("pm {nick}{}", state.view_lock().map_or("", lock_mark))
        }
        Target::Server => "(no room)".to_string(),
    };
    let block = Block::new()
        .borders(Borders::LEFT)
        .padding(Padding::left(1))
        .border_style(Style::new().fg(Color::DarkGray))
        .title(Span::styled(
            format!(" {} ", fit(&title, inner_width.saturating_sub(2))),
            Style::new().add_modifier(Modifier::BOLD),
        ));
    let inner = block.inner(area);
    let height = usize::from(inner.height);
    let header = Style::new()
        .fg(Color::Gray)
        .add_modifier(Modifier::UNDERLINED);

    // The list: rooms we are in (numbered), the others, then private
    // conversations (numbered).
    let listed = state.listed();
    let number = |i: usize| listed.iter().position(|&b| b == i).map(|n| n + 1);
    let mut list = vec![Line::from(Span::styled("rooms", header))];
    let mut private = Vec::new();
    for &i in &listed {
        let buffer = &state.buffers[i];
        let name = format!(
            "{}{}",
            buffer.name(),
            state.buffer_lock(i).map_or("", lock_mark)
        );
        let row = |count| {
            list_row(
                number(i),
                &name,
                count,
                (buffer.unread, buffer.mention),
                i == state.view,
                inner_width,
            )
        };
        match buffer.target {
            Target::Room(_) => list.push(row(Some(buffer.users.len()))),
            _ => private.push(row(None)),
        }
    }
    for (name, count) in &state.rooms {
        let joined = listed
            .iter()
            .any(|&i| state.buffers[i].target.same(&Target::Room(name.clone())));
        if !joined {
            let count = count.parse().ok();
            list.push(list_row(None, name, count, (0, false), false, inner_width));
        }
    }
    if !private.is_empty() {
        list.push(Line::from(Span::styled("private", header)));
        list.extend(private);
    }

    let mut lines = Vec::new();
    if let Target::Room(_) = shown.target {
        let users = &shown.users;
        lines.push(Line::from(Span::styled(
            format!("users ({})", users.len()),
            header,
        )));
        // Leave room for the list below: at most half the panel.
        let list_rows = (list.len() + 1).min(height / 2);
        let user_rows = height.saturating_sub(list_rows + 1).max(1);
        let mine = state.nick.as_deref().unwrap_or("");
        for (i, user) in users.iter().enumerate() {
            if i + 1 == user_rows && users.len() > user_rows {
                lines.push(Line::from(Span::styled(
                    format!(" +{} more", users.len() - i),
                    Style::new().fg(Color::DarkGray),
                )));
                break;
            }
            let marker = if user.trim_start_matches('@').eq_ignore_ascii_case(mine) {
                "•"
            } else {
                " "
            };
            lines.push(Line::from(vec![
                Span::raw(marker),
                Span::styled(fit(user, inner_width.saturating_sub(1)), nick_style(user)),
            ]));
        }
        lines.push(Line::default());
    }
    lines.extend(list);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
