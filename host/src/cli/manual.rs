//! `passerelle man`: the manual pages, made from the same definitions as `--help`
//! (`clap_mangen`): the main page, and with `--out` one page per command and
//! subcommand (`passerelle-accounts-set-secret.1`).

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::args::Cli;
use super::render::Output;

/// The main page on standard output, or every page into `out`.
pub fn write(out: Option<&Path>) -> Result<Output> {
    let command = Cli::command();
    let Some(dir) = out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command).render(&mut page)?;
        return Ok(Output::Text(String::from_utf8_lossy(&page).into_owned()));
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    write_tree(command, "passerelle", dir, &mut written)?;
    Ok(Output::Text(format!(
        "wrote {} manual pages into {} (read one with `man -l {}/passerelle.1`)\n",
        written.len(),
        dir.display(),
        dir.display()
    )))
}

/// `command`'s page as `name.1`, then its subcommands' as `name-sub.1`.
fn write_tree(
    command: clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<String>,
) -> Result<()> {
    let file = format!("{name}.1");
    let mut page = Vec::new();
    let command = command.name(name.to_string());
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    std::fs::write(dir.join(&file), page).with_context(|| format!("writing {file}"))?;
    written.push(file);
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_tree(
            sub.clone(),
            &format!("{name}-{}", sub.get_name()),
            dir,
            written,
        )?;
    }
    Ok(())
}
