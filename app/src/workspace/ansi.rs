//! ANSI colours in a run's output, as a terminal shows them: SGR sequences (`ESC [ … m`) become
//! styles of the text that follows (the 16 colours, bold, dim, italic, underline; 256-colour and
//! true-colour sequences are read and left uncoloured), every other escape sequence and carriage
//! return is dropped. A style carries over from one line to the next, as in a terminal.

/// The style of a run of text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// Foreground colour: 0–7 the normal colours (black, red, green, yellow, blue, magenta,
    /// cyan, white), 8–15 their bright forms.
    pub foreground: Option<u8>,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
}

const COLOUR_NAMES: [&str; 8] = [
    "black", "red", "green", "yellow", "blue", "magenta", "cyan", "white",
];

impl Style {
    /// The CSS classes of this style (`ansi-red ansi-bold`), empty for plain text.
    pub fn classes(&self) -> String {
        let mut classes = Vec::new();
        if let Some(colour) = self.foreground {
            let name = COLOUR_NAMES[usize::from(colour % 8)];
            classes.push(if colour >= 8 {
                format!("ansi-bright-{name}")
            } else {
                format!("ansi-{name}")
            });
        }
        for (on, class) in [
            (self.bold, "ansi-bold"),
            (self.dim, "ansi-dim"),
            (self.italic, "ansi-italic"),
            (self.underline, "ansi-underline"),
        ] {
            if on {
                classes.push(class.to_owned());
            }
        }
        classes.join(" ")
    }

    /// Applies one SGR sequence's parameters (`1;31` of `ESC[1;31m`).
    fn apply(&mut self, parameters: &str) {
        let mut numbers = parameters
            .split(';')
            .map(|number| number.parse::<u16>().unwrap_or(0));
        while let Some(number) = numbers.next() {
            match number {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => {
                    self.bold = false;
                    self.dim = false;
                }
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.foreground = u8::try_from(number - 30).ok(),
                90..=97 => self.foreground = u8::try_from(number - 90 + 8).ok(),
                39 => self.foreground = None,
                // 256 colours (`38;5;n`) and true colour (`38;2;r;g;b`), foreground or
                // background: read past their arguments, shown uncoloured.
                38 | 48 => match numbers.next() {
                    Some(5) => {
                        numbers.next();
                    }
                    Some(2) => {
                        numbers.next();
                        numbers.next();
                        numbers.next();
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
}

/// Splits `text` (one line, or any piece of output) into styled runs, starting in `style` and
/// leaving in it the style at the end of the text. Runs of empty text are left out.
pub fn styled_runs(text: &str, style: &mut Style) -> Vec<(Style, String)> {
    let mut runs: Vec<(Style, String)> = Vec::new();
    let mut current = String::new();
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\u{1b}' => {
                if characters.peek() != Some(&'[') {
                    // A two-character escape (`ESC c`, `ESC 7`): dropped.
                    characters.next();
                    continue;
                }
                characters.next();
                let mut parameters = String::new();
                let mut last = None;
                for next in characters.by_ref() {
                    if ('@'..='~').contains(&next) {
                        last = Some(next);
                        break;
                    }
                    parameters.push(next);
                }
                if last == Some('m') {
                    if !current.is_empty() {
                        runs.push((*style, std::mem::take(&mut current)));
                    }
                    style.apply(&parameters);
                }
            }
            '\r' => {}
            _ => current.push(character),
        }
    }
    if !current.is_empty() {
        runs.push((*style, current));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes_and_text(text: &str, style: &mut Style) -> Vec<(String, String)> {
        styled_runs(text, style)
            .into_iter()
            .map(|(style, text)| (style.classes(), text))
            .collect()
    }

    #[test]
    fn colours_and_weights_become_classes_until_reset() {
        let mut style = Style::default();
        assert_eq!(
            classes_and_text(
                "test a ... \u{1b}[32mok\u{1b}[0m, b ... \u{1b}[1;31mFAILED\u{1b}[22m!\u{1b}[m",
                &mut style
            ),
            vec![
                (String::new(), "test a ... ".to_owned()),
                ("ansi-green".to_owned(), "ok".to_owned()),
                (String::new(), ", b ... ".to_owned()),
                ("ansi-red ansi-bold".to_owned(), "FAILED".to_owned()),
                ("ansi-red".to_owned(), "!".to_owned()),
            ]
        );
        assert_eq!(style, Style::default());
    }

    #[test]
    fn bright_colours_and_the_default_colour() {
        let mut style = Style::default();
        assert_eq!(
            classes_and_text("\u{1b}[94minfo\u{1b}[39m plain", &mut style),
            vec![
                ("ansi-bright-blue".to_owned(), "info".to_owned()),
                (String::new(), " plain".to_owned()),
            ]
        );
    }

    #[test]
    fn a_style_carries_over_to_the_next_line() {
        let mut style = Style::default();
        assert_eq!(
            classes_and_text("\u{1b}[33mwarning: unused", &mut style),
            vec![("ansi-yellow".to_owned(), "warning: unused".to_owned())]
        );
        assert_eq!(
            classes_and_text("  --> src/lib.rs:3", &mut style),
            vec![("ansi-yellow".to_owned(), "  --> src/lib.rs:3".to_owned())]
        );
    }

    #[test]
    fn other_sequences_and_carriage_returns_are_dropped() {
        let mut style = Style::default();
        // Cursor movement, erase line, 256 colours and true colour (read, not shown), ESC c.
        assert_eq!(
            classes_and_text(
                "\u{1b}[2K\u{1b}[1Gprogress\r\u{1b}[38;5;208m!\u{1b}[38;2;1;2;3m?\u{1b}[0m\u{1b}cend",
                &mut style
            ),
            vec![
                (String::new(), "progress".to_owned()),
                (String::new(), "!".to_owned()),
                (String::new(), "?".to_owned()),
                (String::new(), "end".to_owned()),
            ]
        );
        // A truncated sequence at the end of the text is dropped, not shown.
        assert_eq!(
            classes_and_text("done\u{1b}[3", &mut style),
            vec![(String::new(), "done".to_owned())]
        );
    }
}
