//! The crate's shape, read from its sources: which top-level modules import which (`crate::x`
//! paths, `use crate::{x, …}`). Any import cycle fails here, and so does an engine module that
//! reaches up into the command layer (docs/architecture.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The command layer: it parses, asks and prints. Nothing else may import it.
const COMMAND_LAYER: [&str; 5] = ["cmd", "confirm", "hints", "notify", "ui"];

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
fn no_import_cycle() {
    let graph = imports();
    assert!(graph.len() > 20, "the sources were read: {graph:?}");
    let found: Vec<String> = cycles(&graph)
        .iter()
        .map(|group| {
            let edges: Vec<String> = group
                .iter()
                .flat_map(|a| {
                    graph[a]
                        .iter()
                        .filter(|b| group.contains(*b))
                        .map(move |b| format!("{a} -> {b}"))
                })
                .collect();
            format!("{group:?} ({})", edges.join(", "))
        })
        .collect();
    assert!(
        found.is_empty(),
        "import cycles: break them (docs/architecture.md): {found:?}"
    );
}

#[test]
fn only_the_command_layer_imports_the_command_layer() {
    let graph = imports();
    let mut reaching: Vec<(String, String)> = Vec::new();
    for (module, names) in &graph {
        if COMMAND_LAYER.contains(&module.as_str()) {
            continue;
        }
        for name in names {
            if COMMAND_LAYER.contains(&name.as_str()) {
                reaching.push((module.clone(), name.clone()));
            }
        }
    }
    assert!(
        reaching.is_empty(),
        "engine modules import the command layer (docs/architecture.md): {reaching:?}"
    );
}

/// Engine files whose strings still name a `faber-db` command, and how many lines do. Advice is
/// a `Remedy` the command layer words; what is left here is not advice but stored data. It may
/// only shrink.
const STILL_NAMING_COMMANDS: [(&str, usize); 1] = [
    // The audit log's detail of a swap whose safety backup comes after it: written to the
    // history as earlier versions wrote it, and printed back by `status` when the run was killed.
    ("ops/restore/mod.rs", 1),
];

/// Every `.rs` file under `dir`, as its path relative to `src`.
fn files_under(src: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(src, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(
                path.strip_prefix(src)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

#[test]
fn engine_errors_name_no_command() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    files_under(&src, &src, &mut files);
    let mut naming: BTreeMap<String, usize> = BTreeMap::new();
    for file in &files {
        let top = file.split(['/', '.']).next().unwrap();
        if COMMAND_LAYER.contains(&top) || top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        let lines = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .filter(|l| {
                l.match_indices("`faber-db ").any(|(at, _)| {
                    l[at + "`faber-db ".len()..].starts_with(|c: char| c.is_ascii_lowercase())
                })
            })
            .count();
        if lines > 0 {
            naming.insert(file.clone(), lines);
        }
    }
    let allowed: BTreeMap<String, usize> = STILL_NAMING_COMMANDS
        .iter()
        .map(|(f, n)| (f.to_string(), *n))
        .collect();
    assert_eq!(
        naming, allowed,
        "engine code names `faber-db` commands: give the error a `Remedy` the command layer words \
         (src/hints.rs), and keep STILL_NAMING_COMMANDS to what is left"
    );
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
        ["a", "b", "c"]
            .iter()
            .map(std::string::ToString::to_string)
            .collect()
    );
}
