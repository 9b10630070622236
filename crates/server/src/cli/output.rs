//! Printing answers: raw JSON with `--json`, otherwise aligned text.

use serde_json::Value;

/// Prints the API's JSON answer as it came (nothing for an empty answer).
pub fn json(body: &Value) {
    if !body.is_null() {
        // A `Value` is plain data; pretty-printing it cannot fail.
        println!(
            "{}",
            serde_json::to_string_pretty(body).unwrap_or_else(|_| body.to_string())
        );
    }
}

/// Prints `label: value` lines with the values aligned.
pub fn fields(rows: &[(&str, String)]) {
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, value) in rows {
        println!("{:width$}  {value}", format!("{label}:"), width = width + 1);
    }
}

/// Prints a table with a header row; columns are as wide as their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|title| title.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// An optional value for display.
pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}
