//! How deeply a statement nests, read from its tokens before it is parsed: parsing, planning
//! and evaluating an expression recurse once per level, so `1+1+…+1` with thousands of terms
//! would overflow a thread's stack and abort the server. Past [`MAX_DEPTH`] the statement is
//! refused with 54001, as PostgreSQL refuses one past its `max_stack_depth`.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// Deepest nesting accepted (operators chained at one level, plus parentheses).
pub const MAX_DEPTH: usize = 1000;

/// The nesting of `sql`: the parentheses open at each point, plus within each of them the
/// chains of operators still open (a chain of one precedence nests one level per operator; a
/// looser operator closes the tighter chains before it). `None` if it does not tokenize (the
/// parser then reports the error).
pub fn depth(sql: &str) -> Option<usize> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let mut open: Vec<Level> = vec![Level::default()];
    let mut running = 0usize;
    let mut deepest = 0usize;
    for token in &tokens {
        match token {
            Token::LParen | Token::LBracket => {
                open.push(Level::default());
                running += 1;
            }
            Token::RParen | Token::RBracket => {
                if open.len() > 1 {
                    let level = open.pop().unwrap_or_default();
                    running = running.saturating_sub(level.depth() + 1);
                }
            }
            Token::SemiColon => {
                open = vec![Level::default()];
                running = 0;
            }
            t => {
                if let (Some(class), Some(level)) = (precedence(t), open.last_mut()) {
                    let before = level.depth();
                    level.push(class);
                    running = running + level.depth() - before;
                }
            }
        }
        deepest = deepest.max(running);
    }
    Some(deepest)
}

/// Operators seen at one parenthesis level, by precedence class.
#[derive(Debug, Default, Clone, Copy)]
struct Level {
    ops: [usize; 7],
}

impl Level {
    /// An operator of `class`: it takes what came before as its left operand, so chains of
    /// tighter operators before it are closed (a new operand begins).
    fn push(&mut self, class: usize) {
        for tighter in self.ops.iter_mut().skip(class + 1) {
            *tighter = 0;
        }
        self.ops[class] += 1;
    }

    /// The depth of the open chains: each operator of a chain nests one level.
    fn depth(&self) -> usize {
        self.ops.iter().sum()
    }
}

/// The precedence class of a binary (or prefix) operator token.
fn precedence(t: &Token) -> Option<usize> {
    if !is_binary_operator(t) {
        return None;
    }
    Some(match t {
        Token::Word(w) if w.keyword == Keyword::OR => 0,
        Token::Word(w) if w.keyword == Keyword::AND => 1,
        Token::Word(w) if w.keyword == Keyword::NOT => 2,
        Token::Plus | Token::Minus | Token::StringConcat => 4,
        Token::Mul | Token::Div | Token::Mod => 5,
        Token::DoubleColon
        | Token::Arrow
        | Token::LongArrow
        | Token::HashArrow
        | Token::HashLongArrow
        | Token::Caret => 6,
        _ => 3,
    })
}

fn is_binary_operator(t: &Token) -> bool {
    match t {
        Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::Mod
        | Token::StringConcat
        | Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Caret
        | Token::Ampersand
        | Token::Pipe
        | Token::DoubleColon
        | Token::Arrow
        | Token::LongArrow
        | Token::HashArrow
        | Token::HashLongArrow
        | Token::Tilde
        | Token::TildeAsterisk
        | Token::ExclamationMarkTilde
        | Token::ExclamationMarkTildeAsterisk => true,
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::NOT
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::IS
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_chained_operators_and_parentheses() {
        assert_eq!(depth("SELECT 1"), Some(0));
        assert_eq!(depth("SELECT 1+2*3"), Some(2));
        assert_eq!(depth("SELECT 1+2*3+4*5"), Some(3));
        let ors = format!("SELECT 1 WHERE {}", vec!["a = 'x'"; 800].join(" OR "));
        assert_eq!(depth(&ors), Some(800));
        assert_eq!(depth("SELECT (1+2), (3+4)"), Some(2));
        assert_eq!(depth("SELECT ((((1))))"), Some(4));
        assert_eq!(
            depth("SELECT a FROM t WHERE x IN (1, 2, 3, 4, 5, 6)"),
            Some(1)
        );
        let long = format!("SELECT {}", vec!["1"; 5000].join("+"));
        assert_eq!(depth(&long), Some(4999));
        assert_eq!(depth("SELECT 1+1; SELECT 2"), Some(1));
    }
}
