//! A small labelled tree that renders both as indented text and as JSON, so each
//! protocol's decoder describes a frame once.

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// One node: a label, an optional byte offset, a scalar value and children.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    key: String,
    offset: Option<usize>,
    text: Option<String>,
    json: Value,
    children: Vec<Node>,
    list: bool,
}

impl Node {
    /// A group whose children render as a JSON object.
    pub(crate) fn group(key: impl Into<String>, offset: Option<usize>) -> Self {
        Node {
            key: key.into(),
            offset,
            text: None,
            json: Value::Null,
            children: vec![],
            list: false,
        }
    }

    /// A group whose children render as a JSON array.
    pub(crate) fn list(key: impl Into<String>, offset: Option<usize>) -> Self {
        Node {
            list: true,
            ..Node::group(key, offset)
        }
    }

    /// A leaf with a JSON value and the text shown for it.
    pub(crate) fn leaf(
        key: impl Into<String>,
        offset: Option<usize>,
        json: impl Into<Value>,
        text: impl Into<String>,
    ) -> Self {
        Node {
            key: key.into(),
            offset,
            text: Some(text.into()),
            json: json.into(),
            children: vec![],
            list: false,
        }
    }

    /// A leaf whose text is its JSON value's plain rendering.
    pub(crate) fn value(
        key: impl Into<String>,
        offset: Option<usize>,
        json: impl Into<Value>,
    ) -> Self {
        let json = json.into();
        let text = match &json {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        Node::leaf(key, offset, json, text)
    }

    /// Sets the text shown after the label of a group.
    pub(crate) fn with_summary(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Appends a child.
    pub(crate) fn push(&mut self, child: Node) -> &mut Self {
        self.children.push(child);
        self
    }

    /// Renders as indented text.
    pub(crate) fn render_text(&self, out: &mut String, depth: usize) {
        let _ = write!(out, "{:width$}", "", width = depth * 2);
        if let Some(at) = self.offset {
            let _ = write!(out, "[{at:>5}] ");
        }
        out.push_str(&self.key);
        if let Some(t) = &self.text {
            let _ = write!(out, ": {t}");
        }
        out.push('\n');
        for c in &self.children {
            c.render_text(out, depth + 1);
        }
    }

    /// Renders as JSON. Groups become objects (with an `offset` member when known),
    /// lists become arrays, leaves become their value.
    pub(crate) fn to_json(&self) -> Value {
        if self.children.is_empty() && !self.list && self.text.is_some() && self.json != Value::Null
        {
            return self.json.clone();
        }
        if self.list {
            return Value::Array(self.children.iter().map(Node::to_json).collect());
        }
        let mut m = Map::new();
        if let Some(at) = self.offset {
            m.insert("offset".into(), at.into());
        }
        for c in &self.children {
            m.insert(c.key.clone(), c.to_json());
        }
        Value::Object(m)
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Hex of at most the first 32 bytes, with the total length when truncated.
pub(crate) fn hex_preview(bytes: &[u8]) -> String {
    const MAX: usize = 32;
    if bytes.len() <= MAX {
        hex(bytes)
    } else {
        format!("{}… ({} bytes)", hex(&bytes[..MAX]), bytes.len())
    }
}
