//! Stage 1: YAML text into a tree that remembers where each node stands.

use crate::error::{ConfigError, ErrorKind, Span};
use crate::limits;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Budget, Spanned};

/// A YAML node with its location.
#[derive(Clone, Debug)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value stands (for a merged `<<:` value, where it is used).
    pub span: Span,
}

/// A YAML value. Mapping keys are strings with their own spans.
#[derive(Clone, Debug)]
pub enum Value {
    /// A mapping, in file order.
    Map(Vec<(Key, Node)>),
    /// A sequence.
    Seq(Vec<Node>),
    /// A string scalar (quoted or plain that is not a number or boolean).
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `null`, `~` or an empty value.
    Null,
    /// A text value already reported as unusable (a NUL byte, too long):
    /// decoders skip it without a second error.
    Refused,
}

/// A mapping key.
#[derive(Clone, Debug)]
pub struct Key {
    /// The key text.
    pub name: String,
    /// Where the key stands.
    pub span: Span,
}

impl Value {
    /// The YAML type name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Map(_) => "a mapping",
            Value::Seq(_) => "a list",
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
            Value::Refused => "a refused value",
        }
    }
}

fn span_of(loc: &serde_saphyr::Location) -> Span {
    let s = loc.span();
    Span {
        line: loc.line() as u32,
        col: loc.column() as u32,
        offset: s.byte_offset().unwrap_or(0) as usize,
        len: s.byte_len().unwrap_or(0) as usize,
    }
}

struct RawValue(Value);

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawValue, E> {
                Ok(RawValue(Value::Str(v.into())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RawValue, E> {
                Ok(RawValue(Value::Str(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawValue, E> {
                Ok(RawValue(Value::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
                Ok(RawValue(
                    i64::try_from(v).map_or(Value::Float(v as f64), Value::Int),
                ))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawValue, E> {
                Ok(RawValue(Value::Float(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawValue, E> {
                Ok(RawValue(Value::Bool(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawValue, E> {
                Ok(RawValue(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<RawValue, E> {
                Ok(RawValue(Value::Null))
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<RawValue, D2::Error> {
                RawValue::deserialize(d)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawValue, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Spanned<String>>()? {
                    let v = m.next_value::<Spanned<RawValue>>()?;
                    out.push((
                        Key {
                            name: k.value,
                            span: span_of(&k.referenced),
                        },
                        Node {
                            value: v.value.0,
                            span: span_of(&v.referenced),
                        },
                    ));
                }
                Ok(RawValue(Value::Map(out)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<RawValue, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = s.next_element::<Spanned<RawValue>>()? {
                    out.push(Node {
                        value: v.value.0,
                        span: span_of(&v.referenced),
                    });
                }
                Ok(RawValue(Value::Seq(out)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `span` with its offset taken from its line and column: the parser's
/// errors do not always carry a byte offset, and the snippet must show the
/// line the message names.
fn at_line_col(text: &str, span: Span) -> Span {
    let line_start = if span.line <= 1 {
        Some(0)
    } else {
        text.match_indices('\n')
            .nth(span.line as usize - 2)
            .map(|(i, _)| i + 1)
    };
    let Some(start) = line_start else {
        return span;
    };
    let line = &text[start..];
    let column = line
        .char_indices()
        .nth(span.col.saturating_sub(1) as usize)
        .map_or(line.len(), |(i, _)| i);
    Span {
        offset: start + column,
        ..span
    }
}

/// The parser's limits: how deep, how many nodes, how much alias expansion.
fn budget() -> Budget {
    let mut b = Budget::default();
    b.max_depth = limits::MAX_DEPTH;
    b.flow_nesting_limit = limits::MAX_DEPTH;
    b.max_nodes = limits::MAX_NODES;
    b.max_aliases = limits::MAX_ALIASES;
    b.max_total_scalar_bytes = limits::MAX_SCALAR_BYTES;
    b.max_documents = 1;
    b
}

/// Parses YAML text. A syntax error becomes one [`ConfigError`] at its place.
pub fn parse_yaml(text: &str) -> Result<Node, ConfigError> {
    // strict_booleans: YAML 1.1 reads `y`, `n`, `yes`, `no`, `on`, `off` as
    // booleans, which would turn `name: y` into `true`.
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = limits::MAX_REPLAYED_EVENTS;
    alias_limits.max_replay_stack_depth = limits::MAX_DEPTH;
    let options = serde_saphyr::options! {
        strict_booleans: true,
        budget: Some(budget()),
        alias_limits: alias_limits,
    };
    match serde_saphyr::from_str_with_options::<Spanned<RawValue>>(text, options) {
        Ok(v) => Ok(Node {
            value: v.value.0,
            span: span_of(&v.referenced),
        }),
        Err(e) => {
            let span = e.location().map(|l| at_line_col(text, span_of(&l)));
            if let Some((message, help)) = over_limit(&e) {
                return Err(ConfigError::at(ErrorKind::Range, span, message).help(help));
            }
            let full = e.to_string();
            let first = full.lines().next().unwrap_or("invalid YAML");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            // "line 2 column 2: message" -> "message"
            let message = match first.split_once(": ") {
                Some((head, rest)) if head.starts_with("line ") => rest,
                _ => first,
            };
            let (message, help) = worded(message);
            Err(
                ConfigError::at(ErrorKind::Syntax, span, format!("YAML syntax: {message}"))
                    .help(help),
            )
        }
    }
}

/// The parser's message in the words of a YAML file, with a hint; its
/// advice to programmers (`set DuplicateKeyPolicy in Options`, `use
/// Option<String>`) left out.
fn worded(message: &str) -> (String, &'static str) {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(", set ").next().unwrap_or(rest);
        return (
            format!("the key '{key}' is given twice in this mapping"),
            "keep one of them: YAML takes each key once",
        );
    }
    if message.starts_with("cannot deserialize null into") {
        return (
            "a key or value here is null where text is expected".into(),
            "quote it ('null', '~') if you mean the text",
        );
    }
    if message.contains("expected string scalar") {
        return (
            "a mapping key here is not plain text".into(),
            "keys are names such as memory: a list or a mapping cannot be a key",
        );
    }
    let plain = message
        .split("; use Option<")
        .next()
        .and_then(|m| m.split(", set ").next())
        .unwrap_or(message);
    (
        plain.to_string(),
        "fix the YAML syntax at this place; indentation must use spaces",
    )
}

/// Our wording for a parse stopped by one of the parser's limits: the
/// message and the hint.
fn over_limit(e: &serde_saphyr::Error) -> Option<(String, String)> {
    let mut e = e;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = e
    {
        e = error;
    }
    let depth = || {
        (
            format!(
                "the file nests deeper than {} levels of mappings and lists",
                limits::MAX_DEPTH
            ),
            "a pvefleet configuration nests four levels deep (vms, a VM, its tags); remove the extra brackets or indentation".to_string(),
        )
    };
    let aliases = || {
        (
            "the file expands YAML aliases (*name) beyond what pvefleet reads".to_string(),
            format!(
                "aliases may be used {} times and expand to {} values in all; write the values out instead of nesting aliases of aliases",
                limits::MAX_ALIASES,
                limits::MAX_REPLAYED_EVENTS
            ),
        )
    };
    use serde_saphyr::Error as E;
    match e {
        E::Budget { breach, .. } => Some(match breach {
            BudgetBreach::Depth { .. } => depth(),
            BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => (
                format!(
                    "the file holds more than {} YAML values (aliases expanded)",
                    limits::MAX_NODES
                ),
                "a fleet file this large is a mistake or an alias bomb; split it or remove repeated aliases".to_string(),
            ),
            BudgetBreach::ScalarBytes { .. } => (
                format!(
                    "the file's text values add up to more than {} (aliases expanded)",
                    limits::human_size(limits::MAX_SCALAR_BYTES)
                ),
                "remove repeated aliases of long values".to_string(),
            ),
            BudgetBreach::Documents { .. } => (
                "the file holds more than one YAML document".to_string(),
                "remove the '---' separators: a configuration is one document".to_string(),
            ),
            _ => aliases(),
        }),
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => Some(aliases()),
        E::AliasReplayStackDepthExceeded { .. } => Some(depth()),
        _ if e.to_string().contains("recursion limit") => Some(depth()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_strict_booleans() {
        let node = parse_yaml("a:\n  b: y\n  c: 10\n").expect("valid yaml");
        let Value::Map(top) = node.value else {
            panic!("top is a map")
        };
        let Value::Map(inner) = &top[0].1.value else {
            panic!("inner is a map")
        };
        assert!(matches!(&inner[0].1.value, Value::Str(s) if s == "y"));
        assert_eq!((inner[1].1.span.line, inner[1].1.span.col), (3, 6));
        assert_eq!(inner[1].1.span.offset, 15);
    }

    #[test]
    fn the_parsers_advice_to_programmers_is_not_shown() {
        for (text, want) in [
            ("a: 1\na: 2\n", "the key 'a' is given twice in this mapping"),
            ("{null: 1}\n", "null where text is expected"),
        ] {
            let e = parse_yaml(text).expect_err("invalid");
            assert!(e.message.contains(want), "{}", e.message);
            assert!(
                !e.message.contains("Option") && !e.message.contains("Policy"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn syntax_error_has_location() {
        let e = parse_yaml("a: [1,2\nb: c\n").expect_err("invalid");
        assert_eq!(e.span.map(|s| s.line), Some(2));
        assert!(e.message.starts_with("YAML syntax: "), "{}", e.message);
        assert_eq!(e.kind, ErrorKind::Syntax);
    }
}
