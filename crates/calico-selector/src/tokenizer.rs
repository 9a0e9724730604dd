//! Selector tokenizer, following `libcalico-go/lib/selector/tokenizer/tokenizer.go`.
//!
//! Facts carried over from Calico (they decide which selectors are accepted):
//! - Whitespace is only space and tab; a newline is an error, not whitespace.
//! - String literals are `"..."` or `'...'` with no escapes of any kind.
//! - Labels are `[A-Za-z0-9_./-]+`, at most [`MAX_LABEL_LENGTH`] bytes.
//! - Word operators (`in`, `not in`, `contains`, `starts with`, `ends with`) are only recognised
//!   directly after a label and need a word boundary after them, so `contains contains "x"` is
//!   valid. Multi-word operators allow any amount of whitespace between the words, including
//!   none (`startswith`, `notin`).
//! - `has(`, `all(` and `global(` must have no space before the `(`; the whole call
//!   (`has( label )`) is a single token.
//!
//! The input is `&str`; every delimiter is ASCII, so all slicing is on character boundaries.
//! Each token records the byte offset where it starts so errors can point at it.

use std::fmt;

use crate::error::SelectorError;

/// Calico's `tokenizer.MaxLabelLength`.
pub const MAX_LABEL_LENGTH: usize = 512;

/// What a token is; label and string values borrow from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind<'a> {
    /// A label name, e.g. `app` or `projectcalico.org/namespace`.
    Label(&'a str),
    /// The contents of a quoted string (quotes stripped).
    StringLiteral(&'a str),
    LBrace,
    RBrace,
    Comma,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `in`
    In,
    /// `!`
    Not,
    /// `not in` / `notin`
    NotIn,
    /// `contains`
    Contains,
    /// `starts with` / `startswith`
    StartsWith,
    /// `ends with` / `endswith`
    EndsWith,
    /// `all()`
    All,
    /// `has(label)`, with the label.
    Has(&'a str),
    LParen,
    RParen,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `global()`
    Global,
    /// End of input; always the last token.
    Eof,
}

impl fmt::Display for TokenKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Label(l) => write!(f, "label {l:?}"),
            TokenKind::StringLiteral(s) => write!(f, "string {s:?}"),
            TokenKind::LBrace => f.write_str("'{'"),
            TokenKind::RBrace => f.write_str("'}'"),
            TokenKind::Comma => f.write_str("','"),
            TokenKind::Eq => f.write_str("'=='"),
            TokenKind::Ne => f.write_str("'!='"),
            TokenKind::In => f.write_str("'in'"),
            TokenKind::Not => f.write_str("'!'"),
            TokenKind::NotIn => f.write_str("'not in'"),
            TokenKind::Contains => f.write_str("'contains'"),
            TokenKind::StartsWith => f.write_str("'starts with'"),
            TokenKind::EndsWith => f.write_str("'ends with'"),
            TokenKind::All => f.write_str("'all()'"),
            TokenKind::Has(l) => write!(f, "'has({l})'"),
            TokenKind::LParen => f.write_str("'('"),
            TokenKind::RParen => f.write_str("')'"),
            TokenKind::And => f.write_str("'&&'"),
            TokenKind::Or => f.write_str("'||'"),
            TokenKind::Global => f.write_str("'global()'"),
            TokenKind::Eof => f.write_str("end of input"),
        }
    }
}

/// A token and the byte offset in the input where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: TokenKind<'a>,
    pub pos: usize,
}

/// Splits `input` into tokens, always ending with [`TokenKind::Eof`].
pub fn tokenize(input: &str) -> Result<Vec<Token<'_>>, SelectorError> {
    let mut tokens = Vec::with_capacity(input.len() / 3 + 2);
    let bytes = input.as_bytes();
    let mut i = 0;
    loop {
        i = skip_whitespace(bytes, i);
        if i >= bytes.len() {
            tokens.push(Token {
                kind: TokenKind::Eof,
                pos: i,
            });
            return Ok(tokens);
        }
        let start = i;
        let after_label = matches!(
            tokens.last(),
            Some(Token {
                kind: TokenKind::Label(_),
                ..
            })
        );
        let (kind, next) = match bytes[i] {
            b'(' => (TokenKind::LParen, i + 1),
            b')' => (TokenKind::RParen, i + 1),
            b'{' => (TokenKind::LBrace, i + 1),
            b'}' => (TokenKind::RBrace, i + 1),
            b',' => (TokenKind::Comma, i + 1),
            q @ (b'"' | b'\'') => {
                let body = i + 1;
                match bytes[body..].iter().position(|&c| c == q) {
                    Some(len) => (
                        TokenKind::StringLiteral(&input[body..body + len]),
                        body + len + 1,
                    ),
                    None => {
                        return Err(SelectorError::UnterminatedString {
                            pos: start,
                            quote: char::from(q),
                        });
                    }
                }
            }
            b'=' => two_char(input, i, "==", TokenKind::Eq)?,
            b'&' => two_char(input, i, "&&", TokenKind::And)?,
            b'|' => two_char(input, i, "||", TokenKind::Or)?,
            b'!' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    (TokenKind::Ne, i + 2)
                } else {
                    (TokenKind::Not, i + 1)
                }
            }
            _ if after_label => word_operator(input, i).ok_or_else(|| {
                let label = match tokens.last() {
                    Some(Token {
                        kind: TokenKind::Label(l),
                        ..
                    }) => (*l).to_owned(),
                    _ => String::new(),
                };
                SelectorError::ExpectedOperatorAfterLabel { pos: start, label }
            })?,
            _ => {
                if let Some(rest) = input[i..].strip_prefix("has(") {
                    let mut j = skip_whitespace(bytes, input.len() - rest.len());
                    let (label, after) = cut_label(input, j)?;
                    j = skip_whitespace(bytes, after);
                    if bytes.get(j) != Some(&b')') {
                        return Err(SelectorError::UnclosedFunction {
                            pos: start,
                            func: "has",
                        });
                    }
                    (TokenKind::Has(label), j + 1)
                } else if input[i..].starts_with("all(") {
                    (
                        TokenKind::All,
                        close_empty_call(bytes, i + "all(".len(), start, "all")?,
                    )
                } else if input[i..].starts_with("global(") {
                    (
                        TokenKind::Global,
                        close_empty_call(bytes, i + "global(".len(), start, "global")?,
                    )
                } else {
                    let (label, after) = cut_label(input, i)?;
                    (TokenKind::Label(label), after)
                }
            }
        };
        tokens.push(Token { kind, pos: start });
        i = next;
    }
}

/// True if `label` is a complete, valid selector label (Calico's `tokenizer.ValidLabel`).
pub fn valid_label(label: &str) -> bool {
    !label.is_empty() && label.len() <= MAX_LABEL_LENGTH && label.bytes().all(is_label_char)
}

/// Label characters: `[A-Za-z0-9_./-]` (Calico's `identifierChar`).
pub(crate) fn is_label_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-')
}

fn skip_whitespace(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
        i += 1;
    }
    i
}

/// End of input or a non-label character: the word operator ends here.
fn at_word_boundary(bytes: &[u8], i: usize) -> bool {
    bytes.get(i).is_none_or(|&c| !is_label_char(c))
}

fn describe_at(input: &str, i: usize) -> String {
    match input[i..].chars().next() {
        Some(c) => format!("{c:?}"),
        None => "end of input".to_owned(),
    }
}

fn two_char<'a>(
    input: &'a str,
    i: usize,
    op: &'static str,
    kind: TokenKind<'a>,
) -> Result<(TokenKind<'a>, usize), SelectorError> {
    if input[i..].starts_with(op) {
        Ok((kind, i + 2))
    } else {
        Err(SelectorError::ExpectedOperatorChars {
            pos: i,
            expected: op,
            found: input[i..].chars().take(2).collect(),
        })
    }
}

/// Cuts a label starting at `i`; returns it and the offset just after it.
fn cut_label(input: &str, i: usize) -> Result<(&str, usize), SelectorError> {
    let bytes = input.as_bytes();
    let mut end = i;
    while end < bytes.len() && is_label_char(bytes[end]) {
        end += 1;
    }
    let len = end - i;
    if len == 0 {
        return Err(SelectorError::ExpectedLabel {
            pos: i,
            found: describe_at(input, i),
        });
    }
    if len > MAX_LABEL_LENGTH {
        return Err(SelectorError::LabelTooLong {
            pos: i,
            len,
            max: MAX_LABEL_LENGTH,
        });
    }
    Ok((&input[i..end], end))
}

/// After `all(` / `global(`: optional whitespace then `)`.
fn close_empty_call(
    bytes: &[u8],
    i: usize,
    start: usize,
    func: &'static str,
) -> Result<usize, SelectorError> {
    let j = skip_whitespace(bytes, i);
    if bytes.get(j) == Some(&b')') {
        Ok(j + 1)
    } else {
        Err(SelectorError::UnclosedFunction { pos: start, func })
    }
}

/// The operators allowed right after a label, tried in Calico's order.
fn word_operator(input: &str, i: usize) -> Option<(TokenKind<'static>, usize)> {
    let bytes = input.as_bytes();
    let single = |word: &str| {
        let end = i + word.len();
        (input[i..].starts_with(word) && at_word_boundary(bytes, end)).then_some(end)
    };
    // Multi-word operators: whitespace after each word is skipped, and only the position after
    // the last word must be a word boundary, exactly like Calico's cutMultiWordPrefixCheckBreak
    // (so "startswith" and "starts   with" are both accepted).
    let multi = |words: &[&str]| {
        let mut j = i;
        for w in words {
            if !input[j..].starts_with(w) {
                return None;
            }
            j = skip_whitespace(bytes, j + w.len());
        }
        at_word_boundary(bytes, j).then_some(j)
    };
    if let Some(end) = single("contains") {
        Some((TokenKind::Contains, end))
    } else if let Some(end) = multi(&["starts", "with"]) {
        Some((TokenKind::StartsWith, end))
    } else if let Some(end) = multi(&["ends", "with"]) {
        Some((TokenKind::EndsWith, end))
    } else if let Some(end) = multi(&["not", "in"]) {
        Some((TokenKind::NotIn, end))
    } else {
        single("in").map(|end| (TokenKind::In, end))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<TokenKind<'_>> {
        tokenize(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn positions_are_byte_offsets() {
        let toks = tokenize("  a == 'b' && has( c )").unwrap();
        let pos: Vec<usize> = toks.iter().map(|t| t.pos).collect();
        assert_eq!(pos, vec![2, 4, 7, 11, 14, 22]);
    }

    #[test]
    fn newline_is_not_whitespace() {
        assert!(matches!(
            tokenize("a == 'b'\n"),
            Err(SelectorError::ExpectedLabel { pos: 8, .. })
        ));
    }

    #[test]
    fn multibyte_inside_strings_is_fine_and_outside_is_an_error() {
        assert_eq!(
            kinds("a == 'é'"),
            vec![
                TokenKind::Label("a"),
                TokenKind::Eq,
                TokenKind::StringLiteral("é"),
                TokenKind::Eof
            ]
        );
        let err = tokenize("é").unwrap_err();
        assert_eq!(
            err,
            SelectorError::ExpectedLabel {
                pos: 0,
                found: "'é'".into()
            }
        );
    }

    #[test]
    fn error_positions() {
        assert_eq!(tokenize("a == \"b").unwrap_err().position(), 5);
        assert_eq!(tokenize("a = 'b'").unwrap_err().position(), 2);
        assert_eq!(tokenize("a == 'b' & c").unwrap_err().position(), 9);
        assert_eq!(tokenize("a squiggles 'b'").unwrap_err().position(), 2);
        assert_eq!(tokenize("x && has(foo").unwrap_err().position(), 5);
    }

    #[test]
    fn valid_label_matches_tokenizer_rules() {
        assert!(valid_label("projectcalico.org/namespace"));
        assert!(valid_label(&"a".repeat(512)));
        assert!(!valid_label(&"a".repeat(513)));
        assert!(!valid_label(""));
        assert!(!valid_label("a b"));
        assert!(!valid_label("a=b"));
    }
}
