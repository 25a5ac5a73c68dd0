//! A typed process outcome: an error that carries the exit code the binary must end with
//! (130/143/129 after a signal, 1 after failed writes), so library code decides the code and
//! `main` still prints exactly one line. Hand-written: it is one struct, not worth a crate.

/// Ends the process with `code` after printing `message` as the one `error:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The process exit status (non-zero).
    pub code: i32,
    /// One line, without a trailing newline; names the run directory or checkpoint concerned.
    pub message: String,
}

impl Exit {
    /// An exit with `code` and a one-line `message`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The exit code an error asks for: an `Exit`'s own code anywhere in the chain, else 1.
    pub fn code_of(error: &anyhow::Error) -> i32 {
        error
            .chain()
            .find_map(|e| e.downcast_ref::<Exit>())
            .map_or(1, |x| x.code)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_code_survives_context_and_plain_errors_exit_1() {
        let e: anyhow::Error = Exit::new(143, "SIGTERM").into();
        assert_eq!(Exit::code_of(&e), 143);
        let wrapped = Err::<(), _>(e).context("outer").unwrap_err();
        assert_eq!(Exit::code_of(&wrapped), 143);
        assert_eq!(Exit::code_of(&anyhow::anyhow!("plain")), 1);
    }
}
