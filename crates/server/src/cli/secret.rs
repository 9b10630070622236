//! Reading a password without a terminal: from stdin (`--password-stdin`) or from the
//! environment, so scripts never need a TTY and the password never appears in `ps`.

use std::io::Read;

use anyhow::{Context, bail};

use super::PASSWORD_VAR;

/// The password from stdin when `from_stdin`, else from `PORTCULLIS_USER_PASSWORD`.
pub fn password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .context("cannot read the password from stdin")?;
        return Ok(strip_line_end(&input).to_owned());
    }
    match std::env::var(PASSWORD_VAR) {
        Ok(password) => Ok(password),
        Err(_) => bail!("give the password on stdin with --password-stdin, or in {PASSWORD_VAR}"),
    }
}

/// `echo secret | portcullis …` adds a line end; it is not part of the password.
fn strip_line_end(input: &str) -> &str {
    input
        .strip_suffix("\r\n")
        .or_else(|| input.strip_suffix('\n'))
        .unwrap_or(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_end_is_removed() {
        assert_eq!(strip_line_end("pass word\n"), "pass word");
        assert_eq!(strip_line_end("pass word\r\n"), "pass word");
        assert_eq!(strip_line_end("pass word"), "pass word");
        assert_eq!(strip_line_end("trailing space \n\n"), "trailing space \n");
    }
}
