//! The structure guard: the modules of `src/` form layers that only point down, and no file
//! imports another that imports it back (directly or round a circle). It reads the `use` lines and
//! the `crate::`/`super::` paths of every file (tests inside a file are left out: they may reach
//! anywhere), and maps each to the deepest module it names. `docs/architecture.md` draws the same
//! layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// Bottom to top: a module may import its own layer and the layers below it, never one above.
const LAYERS: &[&[&str]] = &[
    &["schema", "domain", "clock", "error", "metrics", "limits"],
    &["db"],
    &["config", "telemetry"],
    &["models"],
    &["gateway", "treefort", "webhook_client", "mailer"],
    &["views", "cache"],
    &["state"],
    &["services"],
    &["worker", "cli"],
    &["api", "pages"],
    &["simulator"],
    &["startup"],
];

fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap_or_default();
    LAYERS.iter().position(|layer| layer.contains(&top))
}

/// `src/services/checkout/mod.rs` → `services::checkout`; `lib.rs` and `main.rs` → the root.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The code without comments, string contents and the in-file test module.
fn code_of(text: &str) -> String {
    // One pass, left to right, so that `//` inside a string or `"` inside a comment is no trouble.
    let noise =
        Regex::new(r##"(?s)r#+".*?"#+|//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])'"##)
            .unwrap();
    let code = noise.replace_all(text, "\"\"").into_owned();
    match Regex::new(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{")
        .unwrap()
        .find(&code)
    {
        Some(tests) => code[..tests.start()].to_string(),
        None => code,
    }
}

/// The paths a `use` tree names: `crate::a::{b, c::d}` → `crate::a::b`, `crate::a::c::d`.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let name = tree.split(" as ").next().unwrap_or_default().trim();
        out.push(format!("{prefix}{name}"));
        return;
    };
    let head = format!("{prefix}{}", &tree[..open]);
    let close = tree.rfind('}').filter(|&c| c > open).unwrap_or(tree.len());
    let body = &tree[open + 1..close];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&body[start..i], &head, out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !body[start..].trim().is_empty() {
        expand(&body[start..], &head, out);
    }
}

/// The module of `modules` that `path`, written in `me`, names (its deepest known prefix).
fn resolve(path: &str, me: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut segments = path.split("::").filter(|s| !s.is_empty()).peekable();
    let mut at: Vec<&str> = match *segments.peek()? {
        "crate" => Vec::new(),
        "self" => me.split("::").filter(|s| !s.is_empty()).collect(),
        "super" => {
            let mut at: Vec<&str> = me.split("::").filter(|s| !s.is_empty()).collect();
            while segments.peek() == Some(&"super") {
                segments.next();
                at.pop();
            }
            at
        }
        _ => return None,
    };
    if matches!(segments.peek(), Some(&"crate") | Some(&"self")) {
        segments.next();
    }
    let mut best = at.join("::");
    for segment in segments {
        at.push(segment);
        let name = at.join("::");
        if !modules.contains(&name) {
            break;
        }
        best = name;
    }
    Some(best)
}

/// Every module of `src/` and the modules it imports (its own ancestors left out).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let use_line = Regex::new(r"\buse\s+([^;]+);").unwrap();
    let inline = Regex::new(r"\b(?:crate|super)(?:::\w+)+").unwrap();
    let mut graph = BTreeMap::new();
    for file in &files {
        let me = module_of(&src, file);
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let mut paths = Vec::new();
        for found in use_line.captures_iter(&code) {
            let tree: String = found[1].split_whitespace().collect::<Vec<_>>().join(" ");
            expand(
                &tree.replace(":: ", "::").replace(" ::", "::"),
                "",
                &mut paths,
            );
        }
        paths.extend(inline.find_iter(&code).map(|m| m.as_str().to_string()));
        let targets: BTreeSet<String> = paths
            .iter()
            .filter_map(|p| resolve(p, &me, &modules))
            .filter(|t| !t.is_empty() && *t != me && !me.starts_with(&format!("{t}::")))
            .collect();
        graph.insert(me, targets);
    }
    graph
}

/// One circle of imports, if there is any (depth-first search for a back edge).
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn every_module_has_a_layer() {
    let unplaced: Vec<String> = imports()
        .into_keys()
        .filter(|m| !m.is_empty() && layer_of(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules in no layer of tests/layers.rs: {unplaced:?}"
    );
}

#[test]
fn imports_only_point_down() {
    let mut upward = Vec::new();
    for (from, targets) in imports() {
        let Some(own) = layer_of(&from) else { continue };
        for to in targets {
            if layer_of(&to).is_some_and(|layer| layer > own) {
                upward.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run back up a layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_module_imports_itself_round_a_circle() {
    let graph = imports();
    assert!(
        graph.len() > 50,
        "the map found too few modules: {}",
        graph.len()
    );
    assert!(
        graph["services::checkout::pay"].contains("services::checkout::attempt"),
        "the map misses imports it should see"
    );
    if let Some(circle) = find_circle(&graph) {
        panic!("an import circle: {}", circle.join(" -> "));
    }
}
