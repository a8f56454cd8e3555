//! The crate's shape, read from its sources: which top-level modules import which (`crate::x`
//! paths, `use crate::{x, …}`), and the cycles among them. A new cycle, or a module drawn into
//! the one that is left, fails here (issue 19: no import cycles).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The one cycle still to break, and the only one allowed: the session carries the CLI's
/// arguments and the UI, and `notify` reaches up to it and to the commands' history events.
/// Breaking it shrinks this list; nothing may be added to it.
const KNOWN_CYCLE: [&str; 4] = ["cli", "cmd", "notify", "session"];

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn sources(dir: &Path, top: Option<&str>, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let module = top.map_or_else(|| name.clone(), str::to_string);
        if path.is_dir() {
            sources(&path, Some(&module), out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && !(top.is_none() && (name == "main" || name == "lib"))
        {
            out.push((module, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The modules each top-level module names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        None,
        &mut files,
    );
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect()
    };
    for (module, text) in &files {
        let names = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            if let Some(list) = rest.strip_prefix('{') {
                let list = &list[..list.find('}').unwrap_or(list.len())];
                names.extend(list.split(',').map(|p| ident(p.trim())));
            } else {
                names.insert(ident(rest));
            }
        }
        names.retain(|n| n != module && modules.contains(n));
    }
    graph
}

/// The strongly connected groups of more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        next: usize,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                group.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                s.found.push(group);
            }
        }
    }
    let mut s = State {
        graph,
        next: 0,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

#[test]
fn no_import_cycle_but_the_known_one_and_it_does_not_grow() {
    let graph = imports();
    assert!(graph.len() > 20, "the sources were read: {graph:?}");
    let known: BTreeSet<String> = KNOWN_CYCLE.iter().map(|s| s.to_string()).collect();
    for group in cycles(&graph) {
        let edges: Vec<String> = group
            .iter()
            .flat_map(|a| {
                graph[a]
                    .iter()
                    .filter(|b| group.contains(*b))
                    .map(move |b| format!("{a} -> {b}"))
            })
            .collect();
        assert!(
            group.is_subset(&known),
            "an import cycle among {group:?} ({}): break it (issue 19), never add to KNOWN_CYCLE",
            edges.join(", ")
        );
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
    .collect();
    let found = cycles(&graph);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0],
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
    );
}
