//! The lineage tree of a runs index: each run under the run it branched or was fine-tuned
//! from, shared by `llite-tui runs --tree` and the cockpit's runs pane.

use super::runs::RunSummary;
use std::collections::HashMap;

/// One row of the tree: which run (index into the slice given) at what depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeRow {
    pub index: usize,
    pub depth: usize,
    /// The last child of its parent (draws `└─` instead of `├─`).
    pub last: bool,
}

/// Runs in tree order: roots (no parent in `runs`) in the given order, each followed by its
/// descendants in the given order. A cycle of parents (hand-edited records) cannot loop: every
/// run is placed once, and runs only reachable through a cycle become roots.
pub fn lineage_rows(runs: &[RunSummary]) -> Vec<TreeRow> {
    let by_name: HashMap<&str, usize> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.dir_name.as_str(), i))
        .collect();
    let parent_of = |i: usize| -> Option<usize> {
        let p = runs[i].parent.as_ref()?.run.as_deref()?;
        by_name.get(p).copied().filter(|&j| j != i)
    };
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); runs.len()];
    let mut roots = Vec::new();
    for i in 0..runs.len() {
        match parent_of(i) {
            Some(p) => children[p].push(i),
            None => roots.push(i),
        }
    }
    let mut placed = vec![false; runs.len()];
    let mut out = Vec::with_capacity(runs.len());
    let visit_all = |starts: Vec<usize>, out: &mut Vec<TreeRow>, placed: &mut Vec<bool>| {
        let n = starts.len();
        let mut stack: Vec<TreeRow> = starts
            .into_iter()
            .enumerate()
            .rev()
            .map(|(k, index)| TreeRow {
                index,
                depth: 0,
                last: k + 1 == n,
            })
            .collect();
        while let Some(row) = stack.pop() {
            if placed[row.index] {
                continue;
            }
            placed[row.index] = true;
            out.push(row);
            let kids = &children[row.index];
            for (k, &c) in kids.iter().enumerate().rev() {
                stack.push(TreeRow {
                    index: c,
                    depth: row.depth + 1,
                    last: k + 1 == kids.len(),
                });
            }
        }
    };
    visit_all(roots, &mut out, &mut placed);
    // Whatever a cycle kept unreachable.
    let rest: Vec<usize> = (0..runs.len()).filter(|&i| !placed[i]).collect();
    visit_all(rest, &mut out, &mut placed);
    out
}

/// The prefix that draws a row's place in the tree (`""`, `"└─ "`, `"   ├─ "`...).
pub fn tree_prefix(row: &TreeRow) -> String {
    if row.depth == 0 {
        return String::new();
    }
    let mut s = "   ".repeat(row.depth - 1);
    s.push_str(if row.last { "└─ " } else { "├─ " });
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::lineage::{ParentKind, ParentRecord};
    use crate::store::runs::{RunStatus, RunSummary};

    fn run(name: &str, parent: Option<&str>) -> RunSummary {
        RunSummary {
            dir: name.into(),
            dir_name: name.into(),
            name: name.into(),
            tags: vec![],
            status: RunStatus::Finished,
            steps: 0,
            max_steps: 0,
            tokens: 0,
            best_val_loss: None,
            last_write_unix: 0,
            parent: parent.map(|p| ParentRecord {
                kind: ParentKind::Branch,
                checkpoint: String::new(),
                run: Some(p.into()),
                step: None,
            }),
            notes: vec![],
        }
    }

    #[test]
    fn children_follow_their_parents_and_cycles_terminate() {
        let runs = vec![
            run("c", Some("a")),
            run("a", None),
            run("d", Some("c")),
            run("b", None),
            run("e", Some("a")),
            run("x", Some("y")),
            run("y", Some("x")),
        ];
        let rows = lineage_rows(&runs);
        let names: Vec<String> = rows
            .iter()
            .map(|r| format!("{}{}", tree_prefix(r), runs[r.index].name))
            .collect();
        assert_eq!(names, ["a", "├─ c", "   └─ d", "└─ e", "b", "x", "└─ y"]);
    }
}
