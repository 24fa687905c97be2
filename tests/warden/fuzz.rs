//! Fuzzing on the stable toolchain: every file in `fuzz/corpus/<target>/`
//! (seeds plus what coverage-guided runs of `scripts/fuzz` kept) is
//! replayed through its target in `warden::fuzz_targets`, then proptest
//! mutates corpus entries (byte edits, inserted tokens, splices) for a
//! bounded number of cases. A failing case is shrunk and printed; add it
//! to the corpus once fixed. `PROPTEST_CASES` raises the bound.
use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use warden::fuzz_targets::TARGETS;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("read corpus file"))
        .collect()
}

/// Fragments that matter to the parsers, for insertion.
const TOKENS: &[&[u8]] = &[
    b"%",
    b"%2",
    b"%C3%A9",
    b"+",
    b":",
    b"=",
    b"&",
    b"/",
    b".",
    b",",
    b"0",
    b"00",
    b"::ffff:",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\\u0000",
    b"\n",
    b"\r",
    b"arm_sk_",
    b"arm_rt_",
    b"arm_sa_",
    b"Basic ",
    b"\"alg\":\"none\"",
    b"\"exp\":",
    b"1e999",
    b"-1",
    b"255",
    b"/33",
    b"/08",
];

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, usize),
    Delete(usize, usize),
    Splice(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Edit::Splice(i, j)),
    ]
}

fn apply(seed: &[u8], edits: &[Edit], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match *e {
            Edit::Flip(i, b) if !v.is_empty() => {
                let k = i % v.len();
                v[k] ^= b.max(1);
            }
            Edit::Flip(..) => v.push(0),
            Edit::Insert(i, t) => {
                let k = at(i, v.len());
                v.splice(k..k, TOKENS[t].iter().copied());
            }
            Edit::Delete(i, n) => {
                let k = at(i, v.len());
                let end = (k + n).min(v.len());
                v.drain(k..end);
            }
            Edit::Splice(i, j) => {
                let other = &corpus[j % corpus.len()];
                let k = at(i, v.len());
                let from = at(j, other.len());
                v.truncate(k);
                v.extend_from_slice(&other[from..]);
            }
        }
    }
    v.truncate(4096);
    v
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

#[test]
fn corpus_replays_clean() {
    for (name, run) in TARGETS {
        let inputs = corpus(name);
        assert!(inputs.len() >= 5, "corpus for {name} is missing");
        for input in &inputs {
            run(input);
        }
    }
}

#[test]
fn mutated_corpus_keeps_the_invariants() {
    for (name, run) in TARGETS {
        let inputs = corpus(name);
        let mut runner = TestRunner::new(Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (0..inputs.len(), proptest::collection::vec(edit(), 1..8));
        let result = runner.run(&strategy, |(seed, edits)| {
            let data = apply(&inputs[seed], &edits, &inputs);
            let outcome = std::panic::catch_unwind(|| run(&data));
            prop_assert!(
                outcome.is_ok(),
                "target {} broke an invariant on {:?}",
                name,
                String::from_utf8_lossy(&data)
            );
            Ok(())
        });
        if let Err(e) = result {
            panic!("fuzz target {name}: {e}");
        }
    }
}
