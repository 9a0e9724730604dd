//! The one error type of this crate.
//!
//! Every variant carries the byte offset into the selector text where the problem was found
//! (`pos`), so a caller can point at it (`calicoctl` prints the selector with a caret). The
//! accept/reject decisions match Calico's Go tokenizer and parser exactly; only the wording and
//! the extra position information are ours.

use thiserror::Error;

/// Why a selector (or a label, or a programmatically built AST) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SelectorError {
    /// A `"` or `'` opened a string literal that never closes (selector strings have no escapes).
    #[error("unterminated string literal starting at byte {pos}: no closing {quote}")]
    UnterminatedString { pos: usize, quote: char },

    /// A lone `=`, `&` or `|`: Calico only has the two-character operators `==`, `&&`, `||`.
    #[error("expected {expected:?} at byte {pos}, found {found:?}")]
    ExpectedOperatorChars {
        pos: usize,
        expected: &'static str,
        found: String,
    },

    /// A label must be followed by an operator (`==`, `!=`, `in`, `not in`, `contains`,
    /// `starts with`, `ends with`).
    #[error(
        "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label \
         {label:?}, at byte {pos}"
    )]
    ExpectedOperatorAfterLabel { pos: usize, label: String },

    /// Something that is not a label character where a label was required
    /// (labels are `[A-Za-z0-9_./-]+`).
    #[error("expected a label ([A-Za-z0-9_./-]) at byte {pos}, found {found}")]
    ExpectedLabel { pos: usize, found: String },

    /// Calico limits labels in selectors to 512 bytes (`tokenizer.MaxLabelLength`).
    #[error("label at byte {pos} is {len} bytes long; the maximum is {max}")]
    LabelTooLong { pos: usize, len: usize, max: usize },

    /// `has(`, `all(` or `global(` without the closing parenthesis.
    #[error("no closing ')' after {func}( at byte {pos}")]
    UnclosedFunction { pos: usize, func: &'static str },

    /// The parser expected one kind of token and found another.
    #[error("expected {expected} at byte {pos}, found {found}")]
    UnexpectedToken {
        pos: usize,
        expected: &'static str,
        found: String,
    },

    /// A complete selector was parsed but more tokens follow (e.g. a stray `)`).
    #[error("unexpected {found} at byte {pos} after the end of the selector")]
    TrailingInput { pos: usize, found: String },

    /// Nesting deeper than [`crate::MAX_NESTING`]. Calico's Go parser has no limit (Go stacks
    /// grow); we bound recursion so hostile input cannot overflow the stack.
    #[error("selector nested deeper than {max} levels at byte {pos}")]
    TooDeep { pos: usize, max: usize },

    /// A programmatically built AST or a label rewrite that would not survive a round trip
    /// through the canonical text form.
    #[error("invalid selector AST: {reason}")]
    InvalidAst { reason: String },
}

impl SelectorError {
    /// Byte offset in the selector text where the problem was found (0 for AST errors).
    pub fn position(&self) -> usize {
        match self {
            SelectorError::UnterminatedString { pos, .. }
            | SelectorError::ExpectedOperatorChars { pos, .. }
            | SelectorError::ExpectedOperatorAfterLabel { pos, .. }
            | SelectorError::ExpectedLabel { pos, .. }
            | SelectorError::LabelTooLong { pos, .. }
            | SelectorError::UnclosedFunction { pos, .. }
            | SelectorError::UnexpectedToken { pos, .. }
            | SelectorError::TrailingInput { pos, .. }
            | SelectorError::TooDeep { pos, .. } => *pos,
            SelectorError::InvalidAst { .. } => 0,
        }
    }
}
