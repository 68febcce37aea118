//! What the tests read and do on the chat page (`web/`) beyond the
//! WebDriver basics of [`super::browser`]: its log entries by class, and
//! an account.

use super::browser::Browser;
use serde_json::json;

/// Waits until the page's log has an entry whose class list has every
/// class of `classes` and whose text ends with `text`.
pub fn wait_entry(page: &Browser, classes: &str, text: &str) {
    let script = format!(
        "return [...document.querySelectorAll('#log li{classes}')]\
         .some(li => li.textContent.endsWith({}));",
        serde_json::to_string(text).unwrap()
    );
    page.wait_until(&format!("an entry {classes} ending {text:?}"), &script);
}

/// Opens the page, takes `nick` and registers it (so it is logged in and
/// has published its device key).
pub fn page_logged_in(page: &Browser, url: &str, nick: &str) {
    page_welcomed(page, url);
    page.say(&format!(":nick {nick}"));
    page.wait_for_line(&format!("is now known as {nick}"));
    page.say(":register hunter22");
    page.wait_for_line(&format!("* registered {nick}"));
    page.wait_for_line("* key published");
}

/// Opens (or reloads) the page and waits for the welcome and `web/e2e.js`.
pub fn page_welcomed(page: &Browser, url: &str) {
    page.open(url);
    page.wait_until(
        "the welcome",
        "return [...document.querySelectorAll('#log li')].some(li => li.textContent.includes('* welcome '));",
    );
    page.wait_until(
        "the page's e2e.js",
        "return typeof window.LoopchatE2E === 'object';",
    );
}

/// The text of every log entry whose class list has every class of
/// `classes` (a CSS compound such as `.pm.e2e`).
pub fn entries(page: &Browser, classes: &str) -> Vec<String> {
    let value = page.run(
        &format!(
            "return [...document.querySelectorAll('#log li{classes}')].map(li => li.textContent);"
        ),
        json!([]),
    );
    serde_json::from_value(value).expect("strings")
}
