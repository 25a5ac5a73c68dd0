//! Colour themes from `themes/<name>.toml`. Every key is optional (missing ones keep the
//! built-in dark default) and a broken file never crashes the cockpit: it falls back to the
//! default and reports a one-line warning.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Resolved colours the panes draw with.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub background: Color,
    pub text: Color,
    pub dim: Color,
    pub accent: Color,
    pub border: Color,
    pub train_loss: Color,
    pub train_raw: Color,
    pub val_loss: Color,
    pub lr: Color,
    pub grad_norm: Color,
    pub ok: Color,
    pub warning: Color,
    pub error: Color,
    pub selection_bg: Color,
    pub selection_fg: Color,
}

impl Default for Theme {
    fn default() -> Self {
        Self {
            name: "default".into(),
            background: Color::Rgb(0x1a, 0x1b, 0x26),
            text: Color::Rgb(0xc0, 0xca, 0xf5),
            dim: Color::Rgb(0x56, 0x5f, 0x89),
            accent: Color::Rgb(0x7a, 0xa2, 0xf7),
            border: Color::Rgb(0x3b, 0x42, 0x61),
            train_loss: Color::Rgb(0x7d, 0xcf, 0xff),
            train_raw: Color::Rgb(0x41, 0x48, 0x68),
            val_loss: Color::Rgb(0xff, 0x9e, 0x64),
            lr: Color::Rgb(0xbb, 0x9a, 0xf7),
            grad_norm: Color::Rgb(0x9e, 0xce, 0x6a),
            ok: Color::Rgb(0x9e, 0xce, 0x6a),
            warning: Color::Rgb(0xe0, 0xaf, 0x68),
            error: Color::Rgb(0xf7, 0x76, 0x8e),
            selection_bg: Color::Rgb(0x28, 0x34, 0x57),
            selection_fg: Color::Rgb(0xc0, 0xca, 0xf5),
        }
    }
}

/// The TOML shape: colour names (`"red"`, `"darkgray"`), `"#rrggbb"` or indexed (`"42"`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[serde(default)]
    colors: std::collections::BTreeMap<String, String>,
}

impl Theme {
    /// Base style for every pane: theme text on theme background.
    pub fn base(&self) -> Style {
        Style::new().fg(self.text).bg(self.background)
    }

    /// Borders, highlighted for the focused pane.
    pub fn border_style(&self, focused: bool) -> Style {
        if focused {
            Style::new().fg(self.accent).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(self.border)
        }
    }

    /// Parse a theme file's text; unknown colour keys or bad colours are errors.
    pub fn from_toml(name: &str, text: &str) -> Result<Self, String> {
        let file: ThemeFile = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        let mut theme = Theme {
            name: name.into(),
            ..Theme::default()
        };
        for (key, value) in &file.colors {
            let color = Color::from_str(value.trim())
                .map_err(|_| format!("[colors] {key}: `{value}` is not a colour"))?;
            let slot = match key.as_str() {
                "background" => &mut theme.background,
                "text" => &mut theme.text,
                "dim" => &mut theme.dim,
                "accent" => &mut theme.accent,
                "border" => &mut theme.border,
                "train_loss" => &mut theme.train_loss,
                "train_raw" => &mut theme.train_raw,
                "val_loss" => &mut theme.val_loss,
                "lr" => &mut theme.lr,
                "grad_norm" => &mut theme.grad_norm,
                "ok" => &mut theme.ok,
                "warning" => &mut theme.warning,
                "error" => &mut theme.error,
                "selection_bg" => &mut theme.selection_bg,
                "selection_fg" => &mut theme.selection_fg,
                other => return Err(format!("[colors] unknown key `{other}`")),
            };
            *slot = color;
        }
        Ok(theme)
    }

    /// Load `<dir>/<name>.toml`; on any problem return the default plus a warning line.
    pub fn load(dir: &Path, name: &str) -> (Self, Option<String>) {
        let path = theme_path(dir, name);
        let result = crate::store::fsio::read_bounded_string(&path, 1 << 20)
            .map_err(|e| format!("cannot read: {e:#}"))
            .and_then(|text| Theme::from_toml(name, &text));
        match result {
            Ok(theme) => (theme, None),
            Err(e) if name == "default" && !path.exists() => {
                let _ = e;
                (Theme::default(), None)
            }
            Err(e) => (
                Theme::default(),
                Some(format!(
                    "theme {}: {e}; using built-in default",
                    path.display()
                )),
            ),
        }
    }
}

/// Where a theme named `name` lives.
pub fn theme_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.toml"))
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| {
            let gutter = l
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            !l.is_empty() && !gutter.starts_with('|') && !l.chars().all(|c| c == '^')
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn themes_dir() -> PathBuf {
        Path::new(file!()).parent().unwrap().join("../../themes")
    }

    #[test]
    fn shipped_default_matches_builtin_and_others_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(themes_dir());
        let dir = if dir.exists() { dir } else { themes_dir() };
        let (t, warn) = Theme::load(&dir, "default");
        assert_eq!(warn, None);
        assert_eq!(t, Theme::default());
        for name in ["light", "gruvbox"] {
            let (t, warn) = Theme::load(&dir, name);
            assert_eq!(warn, None, "{name}");
            assert_ne!(t.background, Theme::default().background, "{name}");
        }
    }

    #[test]
    fn bad_or_missing_theme_falls_back_with_warning() {
        let dir = tempfile::tempdir().unwrap();
        let (t, warn) = Theme::load(dir.path(), "nope");
        assert_eq!(t, Theme::default());
        assert!(warn.unwrap().contains("nope.toml"));
        std::fs::write(
            dir.path().join("bad.toml"),
            "[colors]\ntext = \"notacolour\"\n",
        )
        .unwrap();
        let (_, warn) = Theme::load(dir.path(), "bad");
        assert!(warn.unwrap().contains("not a colour"));
        std::fs::write(dir.path().join("broken.toml"), "[colors\n").unwrap();
        let (_, warn) = Theme::load(dir.path(), "broken");
        assert!(!warn.unwrap().contains('\n'));
    }
}
