//! The console's form pieces, shared by its pages: a field's error tied to its input
//! (`aria-invalid`, `aria-describedby`), labelled inputs that keep what was typed, the CSRF
//! field every POST form carries, and the "I understand" box that confirms without a script.
//! Every dynamic value is escaped here, so callers pass what was typed as it was typed.

use protocol::response::escape_html;

use super::auth::ConsoleAdmin;

/// A field at fault and why.
pub(super) struct Invalid {
    /// The field's `name` (the domain's name for the setting, where it has one).
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Invalid {
    /// `field` is at fault because of `message`.
    pub fn new(field: &str, message: &str) -> Self {
        Invalid {
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// The error next to `field` (whose input has the id `id`) and the attributes tying the
/// input to it; empty when `field` is not at fault.
pub(super) fn field_error(invalid: Option<&Invalid>, id: &str, field: &str) -> (String, String) {
    match invalid {
        Some(invalid) if invalid.field == field => (
            format!(
                "<p class=\"error\" id=\"{id}-error\" role=\"alert\">{}</p>",
                escape_html(&invalid.message)
            ),
            format!(" aria-invalid=\"true\" aria-describedby=\"{id}-error\""),
        ),
        _ => (String::new(), String::new()),
    }
}

/// The error for a fault that belongs to none of `fields`, shown above the form.
pub(super) fn general_error(invalid: Option<&Invalid>, fields: &[&str]) -> String {
    match invalid {
        Some(invalid) if !fields.contains(&invalid.field.as_str()) => format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape_html(&invalid.message)
        ),
        _ => String::new(),
    }
}

/// A labelled input; `value` is what was typed (never a password's).
pub(super) fn input(
    id: &str,
    field: &str,
    label: &str,
    kind: &str,
    value: &str,
    extra: &str,
    invalid: Option<&Invalid>,
) -> String {
    let (error, marker) = field_error(invalid, id, field);
    format!(
        "<div><label for=\"{id}\">{label}</label>{error}\
         <input id=\"{id}\" name=\"{field}\" type=\"{kind}\" value=\"{value}\"{extra}{marker}>\
         </div>",
        value = escape_html(value),
    )
}

/// A labelled textarea (one entry a line); `value` is what was typed.
pub(super) fn textarea(
    id: &str,
    field: &str,
    label: &str,
    value: &str,
    invalid: Option<&Invalid>,
) -> String {
    let (error, marker) = field_error(invalid, id, field);
    format!(
        "<div><label for=\"{id}\">{label}</label>{error}\
         <textarea id=\"{id}\" name=\"{field}\" rows=\"3\" spellcheck=\"false\"{marker}>{value}\
         </textarea></div>",
        value = escape_html(value),
    )
}

/// A labelled choice of `options` (value, label), `chosen` selected. A chosen value that is
/// not among the options (typed by hand) is kept, so the error next to it makes sense.
pub(super) fn select(
    id: &str,
    field: &str,
    label: &str,
    options: &[(&str, &str)],
    chosen: &str,
    invalid: Option<&Invalid>,
) -> String {
    let (error, marker) = field_error(invalid, id, field);
    let mut choices: String = options
        .iter()
        .map(|(value, label)| {
            let selected = if *value == chosen { " selected" } else { "" };
            format!("<option value=\"{value}\"{selected}>{label}</option>")
        })
        .collect();
    if !options.iter().any(|(value, _)| *value == chosen) {
        let chosen = escape_html(chosen);
        choices.push_str(&format!(
            "<option value=\"{chosen}\" selected>{chosen}</option>"
        ));
    }
    format!(
        "<div><label for=\"{id}\">{label}</label>{error}\
         <select id=\"{id}\" name=\"{field}\"{marker}>{choices}</select></div>"
    )
}

/// A labelled checkbox sending `yes` when ticked.
pub(super) fn checkbox(id: &str, field: &str, label: &str, checked: bool) -> String {
    let checked = if checked { " checked" } else { "" };
    format!(
        "<div class=\"confirm\"><input id=\"{id}\" name=\"{field}\" type=\"checkbox\" \
         value=\"yes\"{checked}><label for=\"{id}\">{label}</label></div>"
    )
}

/// The hidden field carrying the session's CSRF token.
pub(super) fn csrf_field(admin: &ConsoleAdmin) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape_html(&admin.session.csrf)
    )
}

/// A required "I understand" checkbox named `confirm` (the form's action checks it: a
/// browser without the `required` check still cannot skip it).
pub(super) fn confirm_box(id: &str, label: &str, invalid: Option<&Invalid>) -> String {
    let (error, marker) = field_error(invalid, id, id);
    format!(
        "<div class=\"confirm\">{error}<input id=\"{id}\" name=\"confirm\" type=\"checkbox\" \
         value=\"yes\" required{marker}><label for=\"{id}\">{label}</label></div>"
    )
}

/// A POST form to `action` with the CSRF field, `fields` (trusted markup) and one button.
pub(super) fn action_form(
    admin: &ConsoleAdmin,
    action: &str,
    fields: &str,
    button: &str,
) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\" class=\"action\">{csrf}{fields}\
         <button type=\"submit\">{button}</button></form>",
        action = escape_html(action),
        csrf = csrf_field(admin),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_tied_to_its_field_and_values_are_escaped() {
        let invalid = Invalid::new("name", "too <long>");
        let html = input("n", "name", "Name", "text", "a\"b", "", Some(&invalid));
        assert!(html.contains("id=\"n-error\" role=\"alert\">too &lt;long&gt;</p>"));
        assert!(
            html.contains("value=\"a&quot;b\" aria-invalid=\"true\" aria-describedby=\"n-error\"")
        );
        assert!(!input("n", "other", "Other", "text", "", "", Some(&invalid)).contains("error"));
        assert_eq!(general_error(Some(&invalid), &["name"]), "");
        assert!(general_error(Some(&invalid), &["other"]).contains("too &lt;long&gt;"));
        let html = select("s", "s", "S", &[("a", "A")], "<x>", None);
        assert!(html.contains("<option value=\"&lt;x&gt;\" selected>"));
        assert!(textarea("t", "t", "T", "</textarea>", None).contains("&lt;/textarea&gt;"));
    }
}
