//! Quoting argv for a POSIX shell.
//!
//! Commands reach a Proxmox node through the remote user's shell, which
//! re-parses the line it is given. [`quote_argv`] is the only place in
//! pvefleet that turns words into shell text: every word is quoted with
//! `shlex::try_quote`, which refuses NUL bytes (no shell can carry them).

use std::borrow::Cow;

/// A word that no POSIX shell can carry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("argument {0:?} contains a NUL byte and cannot be passed through a shell")]
pub struct QuoteError(pub String);

/// Quotes one word so that `/bin/sh` reads it back unchanged.
pub fn quote_word(word: &str) -> Result<Cow<'_, str>, QuoteError> {
    shlex::try_quote(word).map_err(|_| QuoteError(word.to_string()))
}

/// Quotes `argv` into one shell line that `/bin/sh -c` parses back into
/// exactly the same words.
pub fn quote_argv<S: AsRef<str>>(argv: &[S]) -> Result<String, QuoteError> {
    let mut line = String::new();
    for (i, word) in argv.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(&quote_word(word.as_ref())?);
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::process::Command;

    /// Lets the real `/bin/sh` parse `line` and print each word NUL-terminated.
    fn sh_words(line: &str) -> Vec<String> {
        let mut script = String::from("for w in ");
        // `set --` keeps words that start with '-' from being read as options.
        script.push_str("\"$@\"; do printf '%s\\0' \"$w\"; done");
        let mut full = String::from("set -- ");
        full.push_str(line);
        full.push('\n');
        full.push_str(&script);
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(&full)
            .output()
            .expect("run /bin/sh");
        assert!(out.status.success(), "sh failed on {line:?}");
        let mut words: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        words.pop();
        words
    }

    #[test]
    fn refuses_nul() {
        assert!(quote_argv(&["a\0b"]).is_err());
    }

    #[test]
    fn tricky_words_survive() {
        let argv = [
            "qm",
            "set",
            "--boot",
            "order=scsi0;ide2;net0",
            "",
            "-",
            "--",
            "$(touch /tmp/pwned)",
            "`id`",
            "a'b\"c",
            "x && y || z; w",
            "new\nline",
            "~root",
            "#comment",
            "ünï©ødé",
            "*",
            "a\\b",
        ];
        assert_eq!(sh_words(&quote_argv(&argv).unwrap_or_default()), argv);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn sh_parses_back_identical_argv(argv in proptest::collection::vec("[^\u{0}]{0,12}", 1..6)) {
            let line = quote_argv(&argv).expect("no NUL in generated words");
            prop_assert_eq!(sh_words(&line), argv);
        }
    }
}
