//! The text cells of a runs-index row (steps, best val loss, age, parent), shared by
//! `llite-tui runs` and the cockpit's runs pane so both say the same thing.

use super::runs::RunSummary;

impl RunSummary {
    /// `120/2000` (or `120` when max_steps is unknown).
    pub fn steps_cell(&self) -> String {
        match self.max_steps {
            0 => self.steps.to_string(),
            m => format!("{}/{m}", self.steps),
        }
    }

    /// Best val loss with 4 decimals, `-` when none was logged.
    pub fn best_val_cell(&self) -> String {
        self.best_val_loss
            .map_or_else(|| "-".into(), |v| format!("{v:.4}"))
    }

    /// Time since the last write, in its largest unit (`42s`, `5m`, `3h`, `12d`).
    pub fn age_cell(&self, now_unix: u64) -> String {
        if self.last_write_unix == 0 {
            return "-".into();
        }
        age(now_unix.saturating_sub(self.last_write_unix))
    }

    /// `<parent run>@<step> (branch)`, the checkpoint path outside a run, or `-`.
    pub fn parent_cell(&self) -> String {
        let Some(p) = &self.parent else {
            return "-".into();
        };
        let what = p.run.clone().unwrap_or_else(|| p.checkpoint.clone());
        match p.step {
            Some(s) => format!("{what}@{s} ({})", p.kind.label()),
            None => format!("{what} ({})", p.kind.label()),
        }
    }

    /// The display name, with the directory name when a label renamed it.
    pub fn name_cell(&self) -> String {
        if self.name == self.dir_name {
            self.name.clone()
        } else {
            format!("{} [{}]", self.name, self.dir_name)
        }
    }
}

/// Seconds as their largest whole unit.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_use_their_largest_unit() {
        let got: Vec<String> = [0, 59, 60, 7199, 86_400 * 3].map(super::age).to_vec();
        assert_eq!(got, ["0s", "59s", "1m", "1h", "3d"]);
    }
}
