//! Writes OpenAI's `o200k_base` and `cl100k_base` vocabularies (from tiktoken-rs, at build time)
//! as compact tables that `src/tokens.rs` embeds: the bytes of every ordinary token by rank, one
//! after another, and where each one starts (the rank is the position). At run time only a table of ranks is built over
//! them (a few MB), instead of the hash maps of owned byte strings tiktoken-rs keeps (tens of MB
//! per encoding), so the server's resident memory stays small.

use std::collections::HashSet;
use std::path::Path;

/// Highest rank probed; both encodings stay well below it.
const RANK_LIMIT: u32 = 300_000;

fn write_vocabulary(
    name: &str,
    bpe: &tiktoken_rs::CoreBPE,
    out: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let special: HashSet<u32> = bpe
        .special_tokens()
        .into_iter()
        .flat_map(|token| bpe.encode_with_special_tokens(token))
        .collect();
    let mut bytes = Vec::new();
    let mut offsets = Vec::new();
    let mut next_rank = 0u32;
    for rank in 0..RANK_LIMIT {
        if special.contains(&rank) {
            continue;
        }
        let Ok(token) = bpe.decode_bytes(&[rank]) else {
            continue;
        };
        // The tables hold ranks by position: the ordinary ranks must be 0, 1, 2, ...
        assert_eq!(rank, next_rank, "{name}: ordinary ranks are not contiguous");
        next_rank += 1;
        offsets.extend_from_slice(&u32::try_from(bytes.len())?.to_le_bytes());
        bytes.extend_from_slice(&token);
    }
    offsets.extend_from_slice(&u32::try_from(bytes.len())?.to_le_bytes());
    assert!(next_rank > 50_000, "{name}: only {next_rank} tokens read");
    std::fs::write(out.join(format!("{name}.bytes")), bytes)?;
    std::fs::write(out.join(format!("{name}.offsets")), offsets)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=build.rs");
    let out = std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?;
    let out = Path::new(&out);
    write_vocabulary("o200k_base", &tiktoken_rs::o200k_base()?, out)?;
    write_vocabulary("cl100k_base", &tiktoken_rs::cl100k_base()?, out)?;
    Ok(())
}
