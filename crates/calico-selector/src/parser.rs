//! Recursive-descent parser (Calico `libcalico-go/lib/selector/parser/parser.go`).
//!
//! ```text
//! selector := ε | or_expr          (empty => all())
//! or_expr  := and_expr ("||" and_expr)*
//! and_expr := unary ("&&" unary)*
//! unary    := "!"* operand         (the "!"s collapse: odd count => one Not)
//! operand  := has(l) | all() | global() | l op "s" | l [not] in {"s", ...} | "(" or_expr ")"
//! ```
//! A set literal may be empty and may end with a trailing comma (`{"a",}`), as in Calico.
//! Single-operand `&&`/`||` lists are not wrapped, so `(a == "b")` parses to the bare
//! comparison and redundant parentheses disappear from the canonical form.

use std::collections::BTreeSet;

use crate::MAX_NESTING;
use crate::ast::{CompareOp, Node};
use crate::error::SelectorError;
use crate::tokenizer::{Token, TokenKind, tokenize};

/// Parses selector text into an AST (`Node::All` for empty or blank input).
pub(crate) fn parse_node(input: &str) -> Result<Node, SelectorError> {
    let tokens = tokenize(input)?;
    let mut p = Parser {
        tokens: &tokens,
        i: 0,
        depth: 0,
    };
    if p.peek().kind == TokenKind::Eof {
        return Ok(Node::All);
    }
    let node = p.or_expr()?;
    let t = p.peek();
    if t.kind != TokenKind::Eof {
        return Err(SelectorError::TrailingInput {
            pos: t.pos,
            found: t.kind.to_string(),
        });
    }
    // Bound the nesting of the resulting tree as well as the parenthesis depth, so that the
    // canonical form of anything we accept (which parenthesises every &&/|| group) is itself
    // accepted.
    if node.group_depth() > MAX_NESTING {
        return Err(SelectorError::TooDeep {
            pos: 0,
            max: MAX_NESTING,
        });
    }
    Ok(node)
}

struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    i: usize,
    depth: usize,
}

impl<'a> Parser<'_, 'a> {
    /// The current token; the tokenizer always ends the list with Eof, and the parser never
    /// advances past Eof, so the index stays in bounds. The fallback only guards that invariant.
    fn peek(&self) -> Token<'a> {
        self.tokens.get(self.i).copied().unwrap_or(Token {
            kind: TokenKind::Eof,
            pos: self.tokens.last().map_or(0, |t| t.pos),
        })
    }

    fn peek_at(&self, offset: usize) -> Token<'a> {
        self.tokens
            .get(self.i + offset)
            .copied()
            .unwrap_or_else(|| self.peek_last())
    }

    fn peek_last(&self) -> Token<'a> {
        self.tokens.last().copied().unwrap_or(Token {
            kind: TokenKind::Eof,
            pos: 0,
        })
    }

    fn bump(&mut self) {
        if self.i < self.tokens.len() {
            self.i += 1;
        }
    }

    fn or_expr(&mut self) -> Result<Node, SelectorError> {
        let mut operands = vec![self.and_expr()?];
        while self.peek().kind == TokenKind::Or {
            self.bump();
            operands.push(self.and_expr()?);
        }
        Ok(collapse(operands, Node::Or))
    }

    fn and_expr(&mut self) -> Result<Node, SelectorError> {
        let mut operands = vec![self.operation()?];
        while self.peek().kind == TokenKind::And {
            self.bump();
            operands.push(self.operation()?);
        }
        Ok(collapse(operands, Node::And))
    }

    fn operation(&mut self) -> Result<Node, SelectorError> {
        // Any run of leading "!" collapses to a single boolean, like Calico.
        let mut negated = false;
        while self.peek().kind == TokenKind::Not {
            negated = !negated;
            self.bump();
        }
        let t = self.peek();
        let node = match t.kind {
            TokenKind::Has(label) => {
                self.bump();
                Node::Has {
                    label: label.to_owned(),
                }
            }
            TokenKind::All => {
                self.bump();
                Node::All
            }
            TokenKind::Global => {
                self.bump();
                Node::Global
            }
            TokenKind::Label(label) => self.label_operation(label)?,
            TokenKind::LParen => {
                if self.depth >= MAX_NESTING {
                    return Err(SelectorError::TooDeep {
                        pos: t.pos,
                        max: MAX_NESTING,
                    });
                }
                self.bump();
                self.depth += 1;
                let inner = self.or_expr()?;
                self.depth -= 1;
                let close = self.peek();
                if close.kind != TokenKind::RParen {
                    return Err(unexpected(close, "')'"));
                }
                self.bump();
                inner
            }
            _ => return Err(unexpected(t, "a label, has(), all(), global(), '!' or '('")),
        };
        Ok(if negated {
            Node::Not(Box::new(node))
        } else {
            node
        })
    }

    /// `label op "value"` or `label [not] in {...}`; the current token is the label.
    fn label_operation(&mut self, label: &str) -> Result<Node, SelectorError> {
        let op_tok = self.peek_at(1);
        let op = match op_tok.kind {
            TokenKind::Eq => CompareOp::Eq,
            TokenKind::Ne => CompareOp::Ne,
            TokenKind::Contains => CompareOp::Contains,
            TokenKind::StartsWith => CompareOp::StartsWith,
            TokenKind::EndsWith => CompareOp::EndsWith,
            TokenKind::In | TokenKind::NotIn => {
                self.bump();
                self.bump();
                let values = self.set_literal()?;
                let label = label.to_owned();
                return Ok(if op_tok.kind == TokenKind::In {
                    Node::In { label, values }
                } else {
                    Node::NotIn { label, values }
                });
            }
            _ => {
                return Err(unexpected(
                    op_tok,
                    "an operator (==, !=, in, not in, contains, starts with, ends with)",
                ));
            }
        };
        let value_tok = self.peek_at(2);
        let TokenKind::StringLiteral(value) = value_tok.kind else {
            return Err(unexpected(value_tok, "a quoted string"));
        };
        self.bump();
        self.bump();
        self.bump();
        Ok(Node::Compare {
            label: label.to_owned(),
            op,
            value: value.to_owned(),
        })
    }

    /// `{ "a", "b", }` — strings separated by commas, optional trailing comma, may be empty.
    fn set_literal(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        let open = self.peek();
        if open.kind != TokenKind::LBrace {
            return Err(unexpected(open, "a set literal '{...}'"));
        }
        self.bump();
        let mut values = BTreeSet::new();
        while let TokenKind::StringLiteral(v) = self.peek().kind {
            values.insert(v.to_owned());
            self.bump();
            if self.peek().kind == TokenKind::Comma {
                self.bump();
            } else {
                break;
            }
        }
        let close = self.peek();
        if close.kind != TokenKind::RBrace {
            return Err(unexpected(close, "a quoted string or '}'"));
        }
        self.bump();
        Ok(values)
    }
}

fn collapse(mut operands: Vec<Node>, group: fn(Vec<Node>) -> Node) -> Node {
    if operands.len() == 1
        && let Some(only) = operands.pop()
    {
        return only;
    }
    group(operands)
}

fn unexpected(t: Token<'_>, expected: &'static str) -> SelectorError {
    SelectorError::UnexpectedToken {
        pos: t.pos,
        expected,
        found: t.kind.to_string(),
    }
}
